//! A plain `wasi:cli/command` component: valid WebAssembly, wrong world.
//! The host must refuse it with a message naming the missing export.

fn main() {
    println!("I am a command, not a Hive service");
}
