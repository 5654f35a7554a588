//! The SPEC §8 queries: exact results on the fixture lake, and the edge cases.

use lake::queries::{run_queries, QUERIES};
use serde_json::{json, Value};
use shared::RecordType;
use test_support::{cleaned_input, expected, TempLake};

async fn results(env: &TempLake) -> serde_json::Map<String, Value> {
    let (run, results) = run_queries(&env.lake, &QUERIES, false).await.unwrap();
    assert_eq!(run.failed(), Vec::<&str>::new());
    results
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                Value::Array(r.rows().into_iter().map(Value::Object).collect()),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_query_returns_exactly_the_expected_rows_on_the_fixture_lake() {
    let env = TempLake::fixture().await;
    let expected = expected()["queries"].as_object().unwrap().clone();
    let (run, results) = run_queries(&env.lake, &QUERIES, true).await.unwrap();
    assert_eq!(run.failed(), Vec::<&str>::new(), "{run:#?}");
    assert_eq!(results.len(), 10);
    for result in &results {
        let got = Value::Array(result.rows().into_iter().map(Value::Object).collect());
        assert_eq!(got, expected[result.name], "{}", result.name);
        // The result table holds the same rows.
        let stored = env
            .lake
            .read_rows(&format!("results/{}", result.name))
            .await
            .unwrap();
        assert_eq!(
            Value::Array(stored.into_iter().map(Value::Object).collect()),
            expected[result.name],
            "results/{}",
            result.name
        );
    }
    // A second run overwrites each result, keeping history.
    let (again, _) = run_queries(&env.lake, &QUERIES, true).await.unwrap();
    assert!(again.queries.iter().all(|q| q.result_version == Some(1)));
    assert_eq!(
        env.lake
            .count_rows("results/q6_users_joined_per_year")
            .await
            .unwrap(),
        2
    );
}

fn pin(ind: i64, category: Option<&str>, poster: &str, followers: &str) -> Value {
    json!({"index": ind, "unique_id": format!("u{ind}"), "title": "t", "poster_name": poster, "follower_count": followers, "category": category})
}
fn geo(ind: i64, country: &str, year: i32) -> Value {
    json!({"ind": ind, "timestamp": format!("{year}-06-01 12:00:00"), "latitude": 1.0, "longitude": 2.0, "country": country})
}
fn user(ind: i64, name: &str, age: Option<i64>, joined_year: i32) -> Value {
    json!({"ind": ind, "first_name": name, "last_name": "X", "age": age, "date_joined": format!("{joined_year}-01-01 00:00:00")})
}

#[tokio::test]
async fn ties_are_kept_and_null_countries_never_win() {
    let env = TempLake::with(
        &[
            pin(1, Some("art"), "A", "10k"),
            pin(2, Some("travel"), "B", "10k"),
            pin(3, Some("art"), "C", "User Info Error"),
            pin(4, Some("quotes"), "D", "2M"),
        ],
        &[
            geo(1, "Peru", 2019),
            geo(2, "Peru", 2019),
            geo(3, "Chad", 2020),
            geo(4, "Fiji", 2021),
        ],
        &[],
    )
    .await;
    let r = results(&env).await;
    assert_eq!(
        r["q1_popular_category_by_country"],
        json!([
            {"country": "Chad", "category": "art", "category_count": 1},
            {"country": "Fiji", "category": "quotes", "category_count": 1},
            {"country": "Peru", "category": "art", "category_count": 1},
            {"country": "Peru", "category": "travel", "category_count": 1},
        ])
    );
    assert_eq!(
        r["q3a_top_poster_by_country"],
        json!([
            {"country": "Chad", "poster_name": null, "follower_count": null},
            {"country": "Fiji", "poster_name": "D", "follower_count": 2000000},
            {"country": "Peru", "poster_name": "A", "follower_count": 10000},
            {"country": "Peru", "poster_name": "B", "follower_count": 10000},
        ])
    );
    assert_eq!(
        r["q3b_country_with_top_poster"],
        json!([{"country": "Fiji", "follower_count": 2000000}])
    );
    assert_eq!(
        r["q2b_top_category_per_year"],
        json!([
            {"post_year": 2019, "category": "art", "category_count": 1},
            {"post_year": 2019, "category": "travel", "category_count": 1},
            {"post_year": 2020, "category": "art", "category_count": 1},
            {"post_year": 2021, "category": "quotes", "category_count": 1},
        ])
    );
}

#[tokio::test]
async fn a_tie_for_top_country_goes_to_the_first_country() {
    let env = TempLake::with(
        &[
            pin(1, Some("art"), "A", "5k"),
            pin(2, Some("art"), "B", "5k"),
        ],
        &[geo(1, "Peru", 2019), geo(2, "Chad", 2019)],
        &[],
    )
    .await;
    assert_eq!(
        results(&env).await["q3b_country_with_top_poster"],
        json!([{"country": "Chad", "follower_count": 5000}])
    );
}

#[tokio::test]
async fn young_and_unknown_ages_are_left_out_and_even_counts_take_the_lower_middle() {
    let env = TempLake::with(
        &[
            pin(1, Some("art"), "A", "100"),
            pin(2, Some("art"), "B", "200"),
            pin(3, Some("travel"), "C", "300"),
            pin(4, Some("travel"), "D", "400"),
            pin(5, Some("beauty"), "E", "999k"),
            pin(6, Some("beauty"), "F", "888k"),
            pin(7, None, "G", "50"),
            pin(8, None, "H", "60"),
            pin(9, Some("quotes"), "I", "70"),
        ],
        &[],
        &[
            user(1, "a", Some(20), 2015),
            user(2, "b", Some(24), 2015),
            user(3, "c", Some(18), 2015),
            user(4, "d", Some(22), 2016),
            user(5, "e", Some(17), 2015),
            user(6, "f", None, 2015),
            user(7, "g", Some(60), 2017),
            user(8, "h", Some(51), 2017),
            user(9, "i", Some(50), 2021),
        ],
    )
    .await;
    let r = results(&env).await;
    // 18-24: 100, 200, 300, 400 → lower median 200; +50: 50, 60 → 50 (null categories are
    // not counted in q4 but their follower counts are in the medians); 36-50: 70.
    assert_eq!(
        r["q5_median_followers_by_age_group"],
        json!([
            {"age_group": "+50", "median_follower_count": 50},
            {"age_group": "18-24", "median_follower_count": 200},
            {"age_group": "36-50", "median_follower_count": 70},
        ])
    );
    assert_eq!(
        r["q4_popular_category_by_age_group"],
        json!([
            {"age_group": "18-24", "category": "art", "category_count": 2},
            {"age_group": "18-24", "category": "travel", "category_count": 2},
            {"age_group": "36-50", "category": "quotes", "category_count": 1},
        ])
    );
    // Join years 2015-2020 only (2021 left out); ages 17 and null count in q7 but not in q8.
    assert_eq!(
        r["q7_median_followers_by_join_year"],
        json!([
            {"post_year": 2015, "median_follower_count": 300},
            {"post_year": 2016, "median_follower_count": 400},
            {"post_year": 2017, "median_follower_count": 50},
        ])
    );
    assert_eq!(
        r["q8_median_followers_by_age_group_and_join_year"],
        json!([
            {"age_group": "+50", "post_year": 2017, "median_follower_count": 50},
            {"age_group": "18-24", "post_year": 2015, "median_follower_count": 200},
            {"age_group": "18-24", "post_year": 2016, "median_follower_count": 400},
        ])
    );
    assert_eq!(
        r["q6_users_joined_per_year"],
        json!([
            {"post_year": 2015, "number_users_joined": 5},
            {"post_year": 2016, "number_users_joined": 1},
            {"post_year": 2017, "number_users_joined": 2},
        ])
    );
}

#[tokio::test]
async fn medians_count_repeated_values_and_a_group_of_unknown_counts_has_a_null_median() {
    let env = TempLake::with(
        &[
            // 18-24: 10, 10, 10, 20 → the 2nd of 4: 10. 25-35: 5, 7, 7, 7, 9 → the 3rd: 7.
            pin(1, Some("art"), "A", "10"),
            pin(2, Some("art"), "B", "10"),
            pin(3, Some("art"), "C", "20"),
            pin(4, Some("art"), "D", "10"),
            pin(5, Some("art"), "E", "7"),
            pin(6, Some("art"), "F", "9"),
            pin(7, Some("art"), "G", "7"),
            pin(8, Some("art"), "H", "5"),
            pin(9, Some("art"), "I", "7"),
            // 36-50: unreadable or missing follower counts only → a null median.
            pin(10, Some("art"), "J", "User Info Error"),
            pin(11, Some("art"), "K", "lots"),
            // +50: one unknown beside one known: the known one.
            pin(12, Some("art"), "L", "User Info Error"),
            pin(13, Some("art"), "M", "3"),
        ],
        &[],
        &[
            user(1, "a", Some(20), 2015),
            user(2, "b", Some(20), 2015),
            user(3, "c", Some(20), 2015),
            user(4, "d", Some(20), 2015),
            user(5, "e", Some(30), 2016),
            user(6, "f", Some(30), 2016),
            user(7, "g", Some(30), 2016),
            user(8, "h", Some(30), 2016),
            user(9, "i", Some(30), 2016),
            user(10, "j", Some(40), 2017),
            user(11, "k", Some(40), 2017),
            user(12, "l", Some(60), 2018),
            user(13, "m", Some(60), 2018),
        ],
    )
    .await;
    let r = results(&env).await;
    assert_eq!(
        r["q5_median_followers_by_age_group"],
        json!([
            {"age_group": "+50", "median_follower_count": 3},
            {"age_group": "18-24", "median_follower_count": 10},
            {"age_group": "25-35", "median_follower_count": 7},
            {"age_group": "36-50", "median_follower_count": null},
        ])
    );
    assert_eq!(
        r["q7_median_followers_by_join_year"],
        json!([
            {"post_year": 2015, "median_follower_count": 10},
            {"post_year": 2016, "median_follower_count": 7},
            {"post_year": 2017, "median_follower_count": null},
            {"post_year": 2018, "median_follower_count": 3},
        ])
    );
    assert_eq!(
        r["q8_median_followers_by_age_group_and_join_year"],
        json!([
            {"age_group": "+50", "post_year": 2018, "median_follower_count": 3},
            {"age_group": "18-24", "post_year": 2015, "median_follower_count": 10},
            {"age_group": "25-35", "post_year": 2016, "median_follower_count": 7},
            {"age_group": "36-50", "post_year": 2017, "median_follower_count": null},
        ])
    );
}

#[tokio::test]
async fn a_row_delivered_twice_counts_once() {
    let env = TempLake::with(
        &[pin(1, Some("art"), "A", "1k")],
        &[geo(1, "Peru", 2019)],
        &[],
    )
    .await;
    // The same rows again, as another object (a client resend, or the other path).
    let again = [
        cleaned_input(
            RecordType::Pin,
            "again:pin",
            "again.json",
            &[&pin(1, Some("art"), "A", "1k").to_string()],
        ),
        cleaned_input(
            RecordType::Geo,
            "again:geo",
            "again.json",
            &[&geo(1, "Peru", 2019).to_string()],
        ),
    ];
    env.lake.append(&again).await.unwrap();
    assert_eq!(env.lake.count_rows("pin").await.unwrap(), 2);
    let r = results(&env).await;
    assert_eq!(
        r["q2_posts_per_category_per_year"],
        json!([{"post_year": 2019, "category": "art", "category_count": 1}])
    );
}

#[tokio::test]
async fn empty_tables_give_empty_results_not_errors() {
    let env = TempLake::new();
    let (run, results) = run_queries(&env.lake, &QUERIES, true).await.unwrap();
    assert_eq!(run.failed(), Vec::<&str>::new(), "{run:#?}");
    assert!(results.iter().all(|r| r.num_rows() == 0));
    let stored = env
        .lake
        .load("results/q5_median_followers_by_age_group")
        .await
        .unwrap();
    assert_eq!(stored.version(), Some(0));
    assert_eq!(
        env.lake
            .count_rows("results/q5_median_followers_by_age_group")
            .await
            .unwrap(),
        0
    );
}
