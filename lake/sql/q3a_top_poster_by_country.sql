-- q3a: per country, the distinct (poster_name, follower_count) with the highest follower_count
-- (ties kept). A country whose posts all have a null follower_count gives one row of nulls.
WITH posters AS (
    SELECT g.country, p.poster_name, p.follower_count,
           MAX(p.follower_count) OVER (PARTITION BY g.country) AS top_count
    FROM pin p JOIN geo g ON p.ind = g.ind
)
SELECT DISTINCT country,
       CASE WHEN top_count IS NULL THEN NULL ELSE poster_name END AS poster_name,
       top_count AS follower_count
FROM posters
WHERE follower_count = top_count OR top_count IS NULL
ORDER BY country NULLS LAST, poster_name NULLS LAST, follower_count NULLS LAST
