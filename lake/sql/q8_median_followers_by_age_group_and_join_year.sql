-- q8: lower median of follower_count per (age group, year of date_joined), join years 2015 to
-- 2020, under 18 and null ages left out (see q5 for the lower median). users ⨝ pin on ind.
WITH grouped AS (
    SELECT CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
                WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
                WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
                WHEN u.age > 50 THEN '+50' END AS age_group,
           CAST(EXTRACT(YEAR FROM u.date_joined) AS BIGINT) AS post_year,
           p.follower_count
    FROM users u JOIN pin p ON u.ind = p.ind
    WHERE EXTRACT(YEAR FROM u.date_joined) BETWEEN 2015 AND 2020
), groups AS (
    SELECT DISTINCT age_group, post_year FROM grouped WHERE age_group IS NOT NULL
), ranked AS (
    SELECT age_group, post_year, follower_count,
           ROW_NUMBER() OVER (PARTITION BY age_group, post_year ORDER BY follower_count) AS rn,
           COUNT(*) OVER (PARTITION BY age_group, post_year) AS n
    FROM grouped
    WHERE age_group IS NOT NULL AND follower_count IS NOT NULL
), medians AS (
    SELECT age_group, post_year, follower_count AS median_follower_count
    FROM ranked
    WHERE 2 * rn >= n AND 2 * (rn - 1) < n
)
SELECT gr.age_group, gr.post_year, m.median_follower_count
FROM groups gr
LEFT JOIN medians m ON gr.age_group = m.age_group AND gr.post_year = m.post_year
ORDER BY gr.age_group, gr.post_year
