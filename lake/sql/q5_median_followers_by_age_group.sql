-- q5: lower median of follower_count per age group. The lower median of n non-null values
-- sorted ascending is the one at 1-based position ceil(n/2), i.e. the row number rn with
-- 2*rn >= n and 2*(rn-1) < n (Spark's percentile_approx(x, 0.5)). A group whose values are all
-- null gives a null median. pin ⨝ users on ind.
WITH grouped AS (
    SELECT CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
                WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
                WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
                WHEN u.age > 50 THEN '+50' END AS age_group,
           p.follower_count
    FROM pin p JOIN users u ON p.ind = u.ind
), groups AS (
    SELECT DISTINCT age_group FROM grouped WHERE age_group IS NOT NULL
), ranked AS (
    SELECT age_group, follower_count,
           ROW_NUMBER() OVER (PARTITION BY age_group ORDER BY follower_count) AS rn,
           COUNT(*) OVER (PARTITION BY age_group) AS n
    FROM grouped
    WHERE age_group IS NOT NULL AND follower_count IS NOT NULL
), medians AS (
    SELECT age_group, follower_count AS median_follower_count
    FROM ranked
    WHERE 2 * rn >= n AND 2 * (rn - 1) < n
)
SELECT gr.age_group, m.median_follower_count
FROM groups gr LEFT JOIN medians m ON gr.age_group = m.age_group
ORDER BY gr.age_group
