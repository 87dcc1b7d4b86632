//! The host-wide budget for buffered request bodies.
//!
//! A Hive-world request's body is read whole before the guest runs. Each
//! body is bounded by its service's `request-body-kib`, but many slow
//! clients together could still hold any amount of memory; so every
//! buffered byte is reserved here first, and a request that does not fit
//! gets 503 with `Retry-After` at once rather than growing the host.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Bytes that all buffered bodies may hold together.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

/// Bytes held for one body; returned to the budget when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> BodyBudget {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Adds `bytes` to `reservation`, or returns `false` (and leaves it as
    /// it was) when the budget cannot cover them now.
    pub fn grow(&self, reservation: &mut Reservation, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(bytes) = u32::try_from(bytes) else {
            return false;
        };
        match self.bytes.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => {
                match &mut reservation.permit {
                    Some(held) => held.merge(permit),
                    None => reservation.permit = Some(permit),
                }
                true
            }
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => false,
        }
    }

    /// Bytes not reserved right now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

impl Reservation {
    /// Bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, |permit| permit.num_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_refused_past_the_budget_and_returned_on_drop() {
        let budget = BodyBudget::new(100);
        let mut first = Reservation::default();
        assert!(budget.grow(&mut first, 60));
        assert!(budget.grow(&mut first, 20));
        assert_eq!(first.bytes(), 80);
        let mut second = Reservation::default();
        assert!(!budget.grow(&mut second, 30));
        assert_eq!(second.bytes(), 0);
        drop(first);
        assert_eq!(budget.available(), 100);
        assert!(budget.grow(&mut second, 30));
    }
}
