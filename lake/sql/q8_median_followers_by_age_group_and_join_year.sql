-- q8: lower median of follower_count per (age group, year of date_joined), join years 2015 to
-- 2020, under 18 and null ages left out (see q5 for the lower median and how it is found).
-- users ⨝ pin on ind.
WITH grouped AS (
    SELECT CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
                WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
                WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
                WHEN u.age > 50 THEN '+50' END AS age_group,
           CAST(EXTRACT(YEAR FROM u.date_joined) AS BIGINT) AS post_year,
           p.follower_count
    FROM users u JOIN pin p ON u.ind = p.ind
    WHERE EXTRACT(YEAR FROM u.date_joined) BETWEEN 2015 AND 2020
), counted AS (
    SELECT age_group, post_year, follower_count,
           CASE WHEN follower_count IS NOT NULL THEN COUNT(*) END AS posts
    FROM grouped
    WHERE age_group IS NOT NULL
    GROUP BY age_group, post_year, follower_count
), running AS (
    SELECT age_group, post_year, follower_count,
           SUM(posts) OVER (PARTITION BY age_group, post_year ORDER BY follower_count
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS at_or_below,
           SUM(posts) OVER (PARTITION BY age_group, post_year) AS n
    FROM counted
)
SELECT age_group, post_year,
       MIN(CASE WHEN 2 * at_or_below >= n THEN follower_count END) AS median_follower_count
FROM running
GROUP BY age_group, post_year
ORDER BY age_group, post_year
