-- q7: lower median of follower_count per year of date_joined, 2015 to 2020 (see q5 for the
-- lower median and how it is found). users ⨝ pin on ind.
WITH grouped AS (
    SELECT CAST(EXTRACT(YEAR FROM u.date_joined) AS BIGINT) AS post_year,
           p.follower_count
    FROM users u JOIN pin p ON u.ind = p.ind
    WHERE EXTRACT(YEAR FROM u.date_joined) BETWEEN 2015 AND 2020
), counted AS (
    SELECT post_year, follower_count,
           CASE WHEN follower_count IS NOT NULL THEN COUNT(*) END AS posts
    FROM grouped
    GROUP BY post_year, follower_count
), running AS (
    SELECT post_year, follower_count,
           SUM(posts) OVER (PARTITION BY post_year ORDER BY follower_count
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS at_or_below,
           SUM(posts) OVER (PARTITION BY post_year) AS n
    FROM counted
)
SELECT post_year,
       MIN(CASE WHEN 2 * at_or_below >= n THEN follower_count END) AS median_follower_count
FROM running
GROUP BY post_year
ORDER BY post_year
