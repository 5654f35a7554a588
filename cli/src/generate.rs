//! A seeded generator of realistic raw posts for local runs, tests and benchmarks.
//!
//! Rows have the shapes and quirks of the original pipeline's data (SPEC §2): keys in database
//! order, follower counts as text (`"940"`, `"43k"`, `"2M"`), about one post in ten an
//! "all errors" row of sentinels, the 13 categories with matching save locations, many
//! countries, geo timestamps in 2015–2022, join dates in 2015–2017, ages 18–70, and the same
//! person (and the same poster) behind several posts. The same seed always gives the same rows.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use shared::clean::{
    IMAGE_SRC_ERROR_SENTINEL, NO_TAGS_SENTINEL, NO_TITLE_SENTINEL, SAVE_LOCATION_PREFIX,
    USER_INFO_ERROR_SENTINEL,
};
use shared::RecordType;

/// The 13 categories of the original data set.
pub const CATEGORIES: [&str; 13] = [
    "art",
    "beauty",
    "christmas",
    "diy-and-crafts",
    "education",
    "event-planning",
    "finance",
    "home-decor",
    "mens-fashion",
    "quotes",
    "tattoos",
    "travel",
    "vehicles",
];

const COUNTRIES: [&str; 40] = [
    "Afghanistan",
    "Albania",
    "Algeria",
    "American Samoa",
    "Andorra",
    "Angola",
    "Antarctica (the territory South of 60 deg S)",
    "Argentina",
    "Armenia",
    "Aruba",
    "Austria",
    "Azerbaijan",
    "Bangladesh",
    "Bermuda",
    "Bolivia",
    "Bulgaria",
    "Cocos (Keeling) Islands",
    "Colombia",
    "Cote d'Ivoire",
    "Denmark",
    "Egypt",
    "Fiji",
    "Gabon",
    "Grenada",
    "Hungary",
    "Iceland",
    "Jamaica",
    "Kenya",
    "Maldives",
    "Mexico",
    "Mongolia",
    "Nepal",
    "Norway",
    "Peru",
    "Saint Lucia",
    "Slovenia",
    "Togo",
    "Turkey",
    "United States of America",
    "Zimbabwe",
];

const FIRST_NAMES: [&str; 24] = [
    "Abigail",
    "Alexander",
    "Amanda",
    "Andrea",
    "Brittany",
    "Charles",
    "Christopher",
    "Daniel",
    "Dylan",
    "Elizabeth",
    "Emily",
    "Jennifer",
    "Jessica",
    "Joshua",
    "Kevin",
    "Laura",
    "Michael",
    "Nicole",
    "Rachel",
    "Robert",
    "Sarah",
    "Thomas",
    "Tyler",
    "Zachary",
];

const LAST_NAMES: [&str; 20] = [
    "Ali", "Ball", "Brown", "Davis", "Garcia", "Harris", "Holmes", "Jackson", "Johnson", "Jones",
    "Lee", "Martin", "Miller", "Moore", "Smith", "Taylor", "Thomas", "Turner", "White", "Wilson",
];

const POSTER_WORDS: [&str; 16] = [
    "Studio", "Blog", "Home", "Design", "Crafts", "Life", "Style", "Daily", "Ideas", "Magazine",
    "Shop", "Living", "Creative", "Art", "Journal", "Co",
];

const TITLE_WORDS: [&str; 24] = [
    "Easy",
    "Beautiful",
    "Simple",
    "Best",
    "Modern",
    "Vintage",
    "Creative",
    "Cozy",
    "Budget",
    "Ultimate",
    "Summer",
    "Winter",
    "Ideas",
    "Tips",
    "Guide",
    "Inspiration",
    "Projects",
    "Looks",
    "Designs",
    "Quotes",
    "Gifts",
    "Makeover",
    "Trends",
    "Hacks",
];

const TAGS: [&str; 20] = [
    "Diy Crafts",
    "Home Decor",
    "Fall Decor",
    "Christmas Gifts",
    "Travel Tips",
    "Tattoo Ideas",
    "Art Inspiration",
    "Wedding Ideas",
    "Money Saving Tips",
    "Mens Fashion",
    "Life Quotes",
    "Beauty Hacks",
    "Classic Cars",
    "Kids Crafts",
    "Budget Travel",
    "Small Tattoos",
    "Makeup Looks",
    "Party Planning",
    "Study Tips",
    "Watercolor Art",
];

/// One post: the pin, geo and user records the emulator sends together.
#[derive(Debug, Clone, PartialEq)]
pub struct Post {
    /// The `pin` record.
    pub pin: Value,
    /// The `geo` record.
    pub geo: Value,
    /// The `user` record.
    pub user: Value,
}

impl Post {
    /// The post's three records with their types.
    pub fn records(&self) -> [(RecordType, &Value); 3] {
        [
            (RecordType::Pin, &self.pin),
            (RecordType::Geo, &self.geo),
            (RecordType::User, &self.user),
        ]
    }
}

struct Person {
    first_name: &'static str,
    last_name: &'static str,
    age: i64,
    date_joined: String,
}

struct Poster {
    name: String,
    follower_count: String,
}

/// Makes realistic posts from a seed. Iterate it, or call [`PostGenerator::next_post`].
pub struct PostGenerator {
    rng: ChaCha8Rng,
    people: Vec<Person>,
    posters: Vec<Poster>,
    next_ind: i64,
}

impl PostGenerator {
    /// A generator whose output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let people = (0..400).map(|_| random_person(&mut rng)).collect();
        let posters = (0..300).map(|_| random_poster(&mut rng)).collect();
        PostGenerator {
            rng,
            people,
            posters,
            next_ind: 0,
        }
    }

    /// The next post. Each post has a fresh `ind`; people and posters recur across posts.
    pub fn next_post(&mut self) -> Post {
        let ind = self.next_ind;
        self.next_ind += 1;
        let rng = &mut self.rng;
        let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
        let unique_id = uuid::Builder::from_random_bytes(rng.random())
            .into_uuid()
            .to_string();
        let save_location = format!("{SAVE_LOCATION_PREFIX}/data/{category}");

        let pin = if rng.random_ratio(1, 10) {
            json!({
                "index": ind,
                "unique_id": unique_id,
                "title": NO_TITLE_SENTINEL,
                "description": "No description available Story format",
                "poster_name": USER_INFO_ERROR_SENTINEL,
                "follower_count": USER_INFO_ERROR_SENTINEL,
                "tag_list": NO_TAGS_SENTINEL,
                "is_image_or_video": "multi-video(story page format)",
                "image_src": IMAGE_SRC_ERROR_SENTINEL,
                "downloaded": 0,
                "save_location": save_location,
                "category": category,
            })
        } else {
            let poster = &self.posters[rng.random_range(0..self.posters.len())];
            let title = words(rng, &TITLE_WORDS, 3..7, " ");
            let tag_list = if rng.random_ratio(1, 12) {
                NO_TAGS_SENTINEL.to_string()
            } else {
                words(rng, &TAGS, 2..9, ",")
            };
            let media = if rng.random_ratio(1, 8) {
                "video"
            } else {
                "image"
            };
            let hex: String = (0..32)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect();
            json!({
                "index": ind,
                "unique_id": unique_id,
                "title": format!("{title} for {category}"),
                "description": format!("{} {}…", words(rng, &TITLE_WORDS, 6..14, " "), category),
                "poster_name": poster.name,
                "follower_count": poster.follower_count,
                "tag_list": tag_list,
                "is_image_or_video": media,
                "image_src": format!("https://i.pinimg.com/originals/{}/{}/{}/{hex}.jpg", &hex[0..2], &hex[2..4], &hex[4..6]),
                "downloaded": 1,
                "save_location": save_location,
                "category": category,
            })
        };

        let geo = json!({
            "ind": ind,
            "timestamp": random_time(rng, 2015, 2022),
            "latitude": round_to(rng.random_range(-90.0..90.0), 4),
            "longitude": round_to(rng.random_range(-180.0..180.0), 3),
            "country": COUNTRIES[rng.random_range(0..COUNTRIES.len())],
        });

        let person = &self.people[rng.random_range(0..self.people.len())];
        let user = json!({
            "ind": ind,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "age": person.age,
            "date_joined": person.date_joined,
        });
        Post { pin, geo, user }
    }
}

impl Iterator for PostGenerator {
    type Item = Post;

    fn next(&mut self) -> Option<Post> {
        Some(self.next_post())
    }
}

fn random_person(rng: &mut ChaCha8Rng) -> Person {
    Person {
        first_name: FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())],
        last_name: LAST_NAMES[rng.random_range(0..LAST_NAMES.len())],
        age: rng.random_range(18..=70),
        date_joined: random_time(rng, 2015, 2017),
    }
}

fn random_poster(rng: &mut ChaCha8Rng) -> Poster {
    let name = format!(
        "{} {}",
        LAST_NAMES[rng.random_range(0..LAST_NAMES.len())],
        words(rng, &POSTER_WORDS, 1..3, " ")
    );
    let follower_count = match rng.random_range(0..10) {
        0 => "0".to_string(),
        1..=3 => rng.random_range(1..1000).to_string(),
        4..=8 => format!("{}k", rng.random_range(1..1000)),
        _ => format!("{}M", rng.random_range(1..10)),
    };
    Poster {
        name,
        follower_count,
    }
}

fn words(rng: &mut ChaCha8Rng, from: &[&str], count: std::ops::Range<usize>, sep: &str) -> String {
    let n = rng.random_range(count);
    (0..n)
        .map(|_| from[rng.random_range(0..from.len())])
        .collect::<Vec<_>>()
        .join(sep)
}

/// A `YYYY-MM-DD HH:MM:SS` time, uniform over the given years (inclusive).
fn random_time(rng: &mut ChaCha8Rng, first_year: i32, last_year: i32) -> String {
    let start = year_start(first_year);
    let end = year_start(last_year + 1);
    let secs = rng.random_range(start..end);
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn year_start(year: i32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(0)
}

fn round_to(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::clean::{clean_value, CleanRow};
    use std::collections::HashSet;

    #[test]
    fn same_seed_same_posts() {
        let a: Vec<Post> = PostGenerator::new(7).take(50).collect();
        let b: Vec<Post> = PostGenerator::new(7).take(50).collect();
        let c: Vec<Post> = PostGenerator::new(8).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn posts_have_the_original_quirks_and_all_clean() {
        let posts: Vec<Post> = PostGenerator::new(42).take(2000).collect();
        let mut all_errors = 0;
        let mut suffixes = HashSet::new();
        let mut people = HashSet::new();
        let mut categories = HashSet::new();
        for post in &posts {
            for (rt, value) in post.records() {
                clean_value(rt, value).unwrap();
            }
            if post.pin["title"] == NO_TITLE_SENTINEL {
                all_errors += 1;
            } else if let Some(fc) = post.pin["follower_count"].as_str() {
                suffixes.insert(fc.chars().last().filter(|c| c.is_alphabetic()));
            }
            let category = post.pin["category"].as_str().unwrap();
            assert_eq!(
                post.pin["save_location"],
                format!("Local save in /data/{category}")
            );
            categories.insert(category.to_string());
            people.insert((
                post.user["first_name"].clone(),
                post.user["last_name"].clone(),
                post.user["date_joined"].clone(),
            ));
            let joined = post.user["date_joined"].as_str().unwrap();
            assert!(("2015".."2018").contains(&&joined[..4]), "{joined}");
            let posted = post.geo["timestamp"].as_str().unwrap();
            assert!(("2015".."2023").contains(&&posted[..4]), "{posted}");
            let age = post.user["age"].as_i64().unwrap();
            assert!((18..=70).contains(&age));
        }
        assert!(
            (120..280).contains(&all_errors),
            "{all_errors} all-errors rows in 2000"
        );
        assert_eq!(suffixes, HashSet::from([None, Some('k'), Some('M')]));
        assert_eq!(categories.len(), 13);
        assert!(people.len() < 2000 / 3, "people should post several times");
        let CleanRow::Pin(first) = clean_value(RecordType::Pin, &posts[0].pin).unwrap().row else {
            panic!("expected a pin row")
        };
        assert_eq!(first.ind, 0);
    }
}
