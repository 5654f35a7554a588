-- Whole-row-distinct views of the SPEC columns: a record delivered twice, or down both paths,
-- counts once. `raw_pin`, `raw_geo` and `raw_user` are the Delta tables `pin`, `geo` and
-- `user` (in DuckDB: delta_scan('data/lake/pin'); in Spark: delta.`s3://…/lake/pin`).
CREATE VIEW pin AS
SELECT DISTINCT ind, unique_id, title, description, follower_count, poster_name, tag_list,
       is_image_or_video, image_src, save_location, category
FROM raw_pin;

CREATE VIEW geo AS
SELECT DISTINCT ind, country, coordinates, "timestamp"
FROM raw_geo;

CREATE VIEW users AS
SELECT DISTINCT ind, user_name, age, date_joined
FROM raw_user;
