//! `catalog`: an item's page, put together from two other services through
//! typed calls, one of them written in another language:
//!
//! - `GET /catalog/:sku` asks `shop:inventory/stock` (the Rust `inventory`
//!   service) how many are in stock, and `shop:reviews/reviews` (the Python
//!   `reviews` service) how the item is rated, and answers both as JSON.
//!
//! To this crate, the Python service is a function returning a record: the
//! host links the import to whichever component exports the interface,
//! whatever it was written in.

wit_bindgen::generate!({
    path: [
        "../../wit",
        "../shop-wit/inventory",
        "../shop-wit/reviews",
    ],
    inline: "
        package shop:catalog-service;

        world catalog {
            include hive:service/service@0.1.0;
            import shop:inventory/stock@0.1.0;
            import shop:reviews/reviews@0.1.0;
        }
    ",
    world: "catalog",
    generate_all,
});

use exports::hive::service::handler;
use hive::service::types::{Request, Response};
use serde_json::json;
use shop::inventory::stock;
use shop::reviews::reviews;

struct Catalog;

impl handler::Guest for Catalog {
    fn handle(req: Request) -> Response {
        let Some((_, sku)) = req.params.iter().find(|(name, _)| name == "sku") else {
            return json_response(400, json!({ "error": "no sku in the path" }));
        };
        let stock = stock::get_stock(sku);
        let rating = reviews::rating_of(sku);
        if stock.is_none() && rating.count == 0 {
            return json_response(404, json!({ "error": format!("no such item {sku}") }));
        }
        let average =
            (rating.count > 0).then(|| f64::from(rating.stars_total) / f64::from(rating.count));
        json_response(
            200,
            json!({
                "sku": sku,
                "stock": stock,
                "reviews": rating.count,
                "average_stars": average,
            }),
        )
    }
}

fn json_response(status: u16, value: serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: value.to_string().into_bytes(),
    }
}

export!(Catalog);
