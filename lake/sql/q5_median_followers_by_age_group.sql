-- q5: lower median of follower_count per age group. The lower median of a group's n non-null
-- values sorted ascending is the one at 1-based position ceil(n/2) (Spark's
-- percentile_approx(x, 0.5)): the smallest value v with 2 * #(values <= v) >= n. The posts are
-- counted per distinct value first, so the running count is a window over distinct values, not
-- over every post. A group whose values are all null gives a null median. pin ⨝ users on ind.
WITH grouped AS (
    SELECT CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24'
                WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
                WHEN u.age BETWEEN 36 AND 50 THEN '36-50'
                WHEN u.age > 50 THEN '+50' END AS age_group,
           p.follower_count
    FROM pin p JOIN users u ON p.ind = u.ind
), counted AS (
    SELECT age_group, follower_count,
           CASE WHEN follower_count IS NOT NULL THEN COUNT(*) END AS posts
    FROM grouped
    WHERE age_group IS NOT NULL
    GROUP BY age_group, follower_count
), running AS (
    SELECT age_group, follower_count,
           SUM(posts) OVER (PARTITION BY age_group ORDER BY follower_count
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS at_or_below,
           SUM(posts) OVER (PARTITION BY age_group) AS n
    FROM counted
)
SELECT age_group,
       MIN(CASE WHEN 2 * at_or_below >= n THEN follower_count END) AS median_follower_count
FROM running
GROUP BY age_group
ORDER BY age_group
