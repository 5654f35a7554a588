-- q4: per age group (18-24, 25-35, 36-50, +50; under 18 and null ages left out), the
-- categories with the most posts (ties kept; a null category is not counted). pin ⨝ users on ind.
WITH grouped AS (
    SELECT CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
                WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
                WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
                WHEN u.age > 50 THEN '+50' END AS age_group,
           p.category
    FROM pin p JOIN users u ON p.ind = u.ind
), counts AS (
    SELECT age_group, category, COUNT(*) AS category_count
    FROM grouped
    WHERE age_group IS NOT NULL AND category IS NOT NULL
    GROUP BY age_group, category
), ranked AS (
    SELECT age_group, category, category_count,
           MAX(category_count) OVER (PARTITION BY age_group) AS top_count
    FROM counts
)
SELECT age_group, category, category_count
FROM ranked
WHERE category_count = top_count
ORDER BY age_group, category
