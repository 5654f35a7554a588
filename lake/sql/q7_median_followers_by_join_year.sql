-- q7: lower median of follower_count per year of date_joined, 2015 to 2020 (see q5 for the
-- lower median). users ⨝ pin on ind.
WITH grouped AS (
    SELECT CAST(EXTRACT(YEAR FROM u.date_joined) AS BIGINT) AS post_year,
           p.follower_count
    FROM users u JOIN pin p ON u.ind = p.ind
    WHERE EXTRACT(YEAR FROM u.date_joined) BETWEEN 2015 AND 2020
), groups AS (
    SELECT DISTINCT post_year FROM grouped
), ranked AS (
    SELECT post_year, follower_count,
           ROW_NUMBER() OVER (PARTITION BY post_year ORDER BY follower_count) AS rn,
           COUNT(*) OVER (PARTITION BY post_year) AS n
    FROM grouped
    WHERE follower_count IS NOT NULL
), medians AS (
    SELECT post_year, follower_count AS median_follower_count
    FROM ranked
    WHERE 2 * rn >= n AND 2 * (rn - 1) < n
)
SELECT gr.post_year, m.median_follower_count
FROM groups gr LEFT JOIN medians m ON gr.post_year = m.post_year
ORDER BY gr.post_year
