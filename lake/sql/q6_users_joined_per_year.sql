-- q6: distinct people (user_name, date_joined) per year of date_joined, 2015 to 2020.
-- users only.
SELECT CAST(EXTRACT(YEAR FROM date_joined) AS BIGINT) AS post_year,
       COUNT(*) AS number_users_joined
FROM (SELECT DISTINCT user_name, date_joined FROM users) people
WHERE EXTRACT(YEAR FROM date_joined) BETWEEN 2015 AND 2020
GROUP BY CAST(EXTRACT(YEAR FROM date_joined) AS BIGINT)
ORDER BY post_year
