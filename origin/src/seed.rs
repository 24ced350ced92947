//! The deterministic catalogue: every product is a pure function of its id, and a fresh database
//! is filled with the first [`CATALOGUE_SIZE`] of them.
//!
//! Caches at the edge need a real key space to be measured against, and every machine (laptop,
//! CI, a new replica) must serve the same bytes for the same id, so nothing here reads a clock or
//! an ambient random source.

use sqlx::QueryBuilder;

use crate::db::{Db, on_pool};
use crate::product::Product;

/// Products in a freshly seeded catalogue.
pub const CATALOGUE_SIZE: i64 = 10_000;

/// Rows per INSERT: 8 binds each stays far below SQLite's 32 766 and Postgres's 65 535 limits.
const ROWS_PER_INSERT: usize = 500;

/// Mixed into the id so the catalogue can be reshuffled on purpose by changing one constant.
const SALT: u64 = 0x6272_6561_6b77_6174; // "breakwat"

const ADJECTIVES: &[&str] = &[
    "Brave", "Calm", "Clever", "Cosy", "Crisp", "Daring", "Eager", "Elegant", "Fancy", "Gentle",
    "Golden", "Handy", "Humble", "Jolly", "Keen", "Lively", "Lucky", "Mellow", "Mighty", "Nimble",
    "Noble", "Plucky", "Proud", "Quiet", "Rapid", "Rustic", "Sleek", "Snug", "Sturdy", "Sunny",
    "Swift", "Tidy", "Trusty", "Vivid", "Witty", "Zesty", "Bold", "Bright", "Classic", "Nordic",
];

/// Categories with the nouns that belong in them, so a name never says "Kettle" under "Garden".
pub const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "Kitchen",
        &[
            "Kettle", "Skillet", "Whisk", "Teapot", "Colander", "Grater", "Ladle", "Saucepan",
        ],
    ),
    (
        "Garden",
        &[
            "Trowel",
            "Planter",
            "Hose",
            "Shears",
            "Rake",
            "Watering Can",
            "Birdhouse",
            "Seed Tray",
        ],
    ),
    (
        "Office",
        &[
            "Stapler",
            "Notebook",
            "Pen",
            "Binder",
            "Organiser",
            "Clipboard",
            "Paperweight",
            "Ledger",
        ],
    ),
    (
        "Audio",
        &[
            "Headphones",
            "Speaker",
            "Turntable",
            "Amplifier",
            "Microphone",
            "Radio",
            "Soundbar",
            "Earbuds",
        ],
    ),
    (
        "Outdoors",
        &[
            "Tent",
            "Backpack",
            "Compass",
            "Hammock",
            "Canteen",
            "Sleeping Bag",
            "Tarp",
            "Camp Stove",
        ],
    ),
    (
        "Home",
        &[
            "Blanket", "Cushion", "Vase", "Rug", "Candle", "Clock", "Mirror", "Basket",
        ],
    ),
    (
        "Toys",
        &[
            "Kite",
            "Puzzle",
            "Yo-yo",
            "Robot",
            "Spinning Top",
            "Marble Set",
            "Rocking Horse",
            "Blocks",
        ],
    ),
    (
        "Sports",
        &[
            "Football",
            "Racket",
            "Skipping Rope",
            "Yoga Mat",
            "Dumbbell",
            "Frisbee",
            "Helmet",
            "Bottle",
        ],
    ),
    (
        "Bath",
        &[
            "Towel",
            "Soap Dish",
            "Loofah",
            "Bath Mat",
            "Tumbler",
            "Shower Caddy",
            "Robe",
            "Sponge",
        ],
    ),
    (
        "Lighting",
        &[
            "Desk Lamp",
            "Floor Lamp",
            "Pendant",
            "Night Light",
            "Lantern",
            "Sconce",
            "String Lights",
            "Torch",
        ],
    ),
    (
        "Travel",
        &[
            "Suitcase",
            "Passport Holder",
            "Neck Pillow",
            "Duffel",
            "Packing Cube",
            "Luggage Tag",
            "Wash Bag",
            "Adapter",
        ],
    ),
    (
        "Books",
        &[
            "Atlas",
            "Cookbook",
            "Almanac",
            "Field Guide",
            "Sketchbook",
            "Journal",
            "Anthology",
            "Encyclopedia",
        ],
    ),
];

const MATERIALS: &[&str] = &[
    "oak",
    "walnut",
    "recycled steel",
    "bamboo",
    "ceramic",
    "linen",
    "cork",
    "brass",
    "aluminium",
    "glass",
    "wool",
    "canvas",
];
const FINISHES: &[&str] = &[
    "matte",
    "satin",
    "brushed",
    "polished",
    "natural",
    "powder-coated",
];
const PROMISES: &[&str] = &[
    "Built to last a decade of daily use.",
    "Ships in plastic-free packaging.",
    "Backed by a two-year guarantee.",
    "Part of our everyday essentials range.",
    "A customer favourite since launch.",
    "Repairable, with spare parts sold separately.",
];
const CENTS: &[i64] = &[0, 49, 95, 99];

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and well mixed, which is all a catalogue
/// needs; a crate would add a dependency for eight lines.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`. The modulo bias is below 1e-16 for lists this short.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The product with this id. Pure: the same id gives the same product on every machine.
pub fn product(id: i64) -> Product {
    let mut rng = SplitMix64(id as u64 ^ SALT);
    let adjective = *rng.pick(ADJECTIVES);
    let (category, nouns) = *rng.pick(CATEGORIES);
    let noun = *rng.pick(nouns);
    let description = format!(
        "{adjective} {} in {} with a {} finish. {}",
        noun.to_lowercase(),
        rng.pick(MATERIALS),
        rng.pick(FINISHES),
        rng.pick(PROMISES),
    );
    let price_cents = (1 + rng.below(250) as i64) * 100 + rng.pick(CENTS);
    // About one product in ten is out of stock, so the front end has that state to render.
    let stock = match rng.below(10) {
        0 => 0,
        _ => 1 + rng.below(500) as i64,
    };
    Product {
        id,
        sku: format!("BW-{id:06}"),
        name: format!("{adjective} {noun}"),
        description,
        category: category.to_owned(),
        price_cents,
        currency: "EUR".to_owned(),
        stock,
    }
}

/// Fills an empty catalogue with products `1..=count`, in one transaction; returns the number of
/// rows inserted. A catalogue that already holds anything is left alone, so restarts never
/// reseed, and `ON CONFLICT DO NOTHING` makes two instances racing on one empty database safe.
pub async fn seed(db: &Db, count: i64) -> Result<u64, sqlx::Error> {
    let ids: Vec<i64> = (1..=count).collect();
    on_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Ok(0);
        }
        let mut inserted = 0;
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO products \
                 (id, sku, name, description, category, price_cents, currency, stock) ",
            );
            insert.push_values(chunk.iter().map(|&id| product(id)), |mut row, p| {
                row.push_bind(p.id)
                    .push_bind(p.sku)
                    .push_bind(p.name)
                    .push_bind(p.description)
                    .push_bind(p.category)
                    .push_bind(p.price_cents)
                    .push_bind(p.currency)
                    .push_bind(p.stock);
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            inserted += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_same_id_always_gives_the_same_product() {
        for id in [1, 2, 9_999, CATALOGUE_SIZE, i64::MAX] {
            assert_eq!(product(id), product(id));
        }
    }

    #[test]
    fn products_are_well_formed() {
        for id in 1..=CATALOGUE_SIZE {
            let p = product(id);
            assert_eq!(p.id, id);
            assert_eq!(p.sku.len(), 9, "{}", p.sku);
            assert_eq!(p.sku.trim_start_matches("BW-").parse::<i64>().unwrap(), id);
            let (_, nouns) = CATEGORIES
                .iter()
                .find(|(name, _)| *name == p.category)
                .expect("category comes from the list");
            assert!(nouns.iter().any(|n| p.name.ends_with(n)), "{p:?}");
            assert!(p.description.ends_with('.'), "{p:?}");
            assert!((100..=25_099).contains(&p.price_cents), "{p:?}");
            assert!((0..=500).contains(&p.stock), "{p:?}");
        }
    }

    #[test]
    fn the_catalogue_is_varied_not_degenerate() {
        let all: Vec<Product> = (1..=CATALOGUE_SIZE).map(product).collect();
        let distinct = |f: fn(&Product) -> String| all.iter().map(f).collect::<HashSet<_>>().len();
        assert_eq!(distinct(|p| p.sku.clone()), all.len());
        assert_eq!(distinct(|p| p.category.clone()), CATEGORIES.len());
        assert!(distinct(|p| p.name.clone()) > 2_000);
        assert!(distinct(|p| p.price_cents.to_string()) > 500);
        let out_of_stock = all.iter().filter(|p| p.stock == 0).count();
        assert!(
            (500..2_000).contains(&out_of_stock),
            "{out_of_stock} out of stock"
        );
        // Neighbouring ids must not look alike, or caches would be tested on a toy key space.
        let same_as_next = all.windows(2).filter(|w| w[0].name == w[1].name).count();
        assert!(same_as_next < 20, "{same_as_next} neighbours share a name");
    }
}
