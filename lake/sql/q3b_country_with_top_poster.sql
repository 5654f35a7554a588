-- q3b: from q3a, the one country with the highest follower_count (tie: country ascending).
SELECT g.country, MAX(p.follower_count) AS follower_count
FROM pin p JOIN geo g ON p.ind = g.ind
WHERE p.follower_count IS NOT NULL
GROUP BY g.country
ORDER BY follower_count DESC, country ASC NULLS LAST
LIMIT 1
