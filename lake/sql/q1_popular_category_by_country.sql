-- q1: per country, the categories with the most posts (ties kept). pin ⨝ geo on ind.
WITH counts AS (
    SELECT g.country, p.category, COUNT(*) AS category_count
    FROM pin p JOIN geo g ON p.ind = g.ind
    GROUP BY g.country, p.category
), ranked AS (
    SELECT country, category, category_count,
           MAX(category_count) OVER (PARTITION BY country) AS top_count
    FROM counts
)
SELECT country, category, category_count
FROM ranked
WHERE category_count = top_count
ORDER BY country NULLS LAST, category NULLS LAST
