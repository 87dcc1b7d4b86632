//! Imports `wasi:keyvalue/store@0.1.0`, an early version of the proposal
//! that no host serves any more: the host must refuse it at load, naming
//! the interface and the versions it does serve.

wit_bindgen::generate!({
    inline: r#"
        package test:old-keyvalue;

        world old {
            import wasi:keyvalue/store@0.1.0;
        }

        package wasi:keyvalue@0.1.0 {
            interface store {
                get: func(key: string) -> option<list<u8>>;
            }
        }
    "#,
    world: "old",
    generate_all,
});

fn main() {
    let found = wasi::keyvalue::store::get("greeting");
    println!("{} bytes", found.map_or(0, |value| value.len()));
}
