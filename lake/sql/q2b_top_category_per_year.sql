-- q2b: from q2, per year the categories with the most posts (ties kept).
WITH per_year AS (
    SELECT CAST(EXTRACT(YEAR FROM g."timestamp") AS BIGINT) AS post_year,
           p.category,
           COUNT(*) AS category_count
    FROM pin p JOIN geo g ON p.ind = g.ind
    WHERE EXTRACT(YEAR FROM g."timestamp") BETWEEN 2018 AND 2022
    GROUP BY CAST(EXTRACT(YEAR FROM g."timestamp") AS BIGINT), p.category
), ranked AS (
    SELECT post_year, category, category_count,
           MAX(category_count) OVER (PARTITION BY post_year) AS top_count
    FROM per_year
)
SELECT post_year, category, category_count
FROM ranked
WHERE category_count = top_count
ORDER BY post_year, category NULLS LAST
