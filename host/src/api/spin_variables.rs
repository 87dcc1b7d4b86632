//! Spin's `fermyon:spin/variables@2.0.0`, which spin-sdk's `variables::get`
//! imports: a variable is the manifest's `[config]` value of the same
//! name (secrets resolved). Names follow Spin's rule, so a component gets
//! the errors it gets on Spin.

use wasmtime::component::{HasSelf, Linker};

use super::bindings::spin_variables::{self, Error};
use super::config::ConfigCtx;

impl spin_variables::Host for ConfigCtx {
    fn get(&mut self, name: String) -> Result<String, Error> {
        if let Some(problem) = name_problem(&name) {
            return Err(Error::InvalidName(problem));
        }
        self.value(&name)
            .ok_or_else(|| Error::Undefined(format!("no variable named {name:?}")))
    }
}

/// Spin's rule: lowercase ASCII letters, digits and `_`, starting with a
/// letter, with no `__` and no trailing `_`.
fn name_problem(name: &str) -> Option<String> {
    let starts_with_letter = name.starts_with(|c: char| c.is_ascii_lowercase());
    let fine = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_with_letter || !fine || name.contains("__") || name.ends_with('_') {
        return Some(format!(
            "{name:?}: a variable name is lowercase letters, digits and single '_', starting with a letter"
        ));
    }
    None
}

/// Links Spin's variables to the [`ConfigCtx`] `get` finds.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConfigCtx,
) -> wasmtime::Result<()> {
    spin_variables::add_to_linker::<T, HasSelf<ConfigCtx>>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::name_problem;

    #[test]
    fn spins_name_rule() {
        for good in ["greeting", "api_key", "a1"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in ["", "Greeting", "1a", "a__b", "a_", "a-b", "_a"] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
    }
}
