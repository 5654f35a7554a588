-- q2: posts per (year of geo.timestamp, category), years 2018 to 2022. pin ⨝ geo on ind.
SELECT CAST(EXTRACT(YEAR FROM g."timestamp") AS BIGINT) AS post_year,
       p.category,
       COUNT(*) AS category_count
FROM pin p JOIN geo g ON p.ind = g.ind
WHERE EXTRACT(YEAR FROM g."timestamp") BETWEEN 2018 AND 2022
GROUP BY CAST(EXTRACT(YEAR FROM g."timestamp") AS BIGINT), p.category
ORDER BY post_year, category NULLS LAST
