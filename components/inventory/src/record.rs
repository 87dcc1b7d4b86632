//! A SKU's stored record: its count, then one line per reservation that
//! waits for its order's announcement (`p`) and per reservation given back
//! unannounced (`r`), each `<kind> <order> <quantity> <since ms>`. A record
//! without reservations is just the count, as a plain decimal.

/// One reservation line.
#[derive(Debug, Clone, PartialEq)]
struct Reservation {
    order: String,
    quantity: u32,
    since_ms: u64,
}

/// A decoded record.
#[derive(Debug, Default, PartialEq)]
pub struct Record {
    pub count: u32,
    pending: Vec<Reservation>,
    released: Vec<Reservation>,
}

/// What a change to a record does: write it back, or leave it as read.
pub enum Change<T> {
    Write(T),
    Keep(T),
}

impl Record {
    /// The record in `text`, or `None` if it is not one.
    pub fn decode(text: &str) -> Option<Record> {
        let mut lines = text.lines();
        let mut record = Record {
            count: lines.next()?.trim().parse().ok()?,
            ..Record::default()
        };
        for line in lines {
            let mut fields = line.split(' ');
            let kind = fields.next()?;
            let reservation = Reservation {
                order: fields.next()?.to_string(),
                quantity: fields.next()?.parse().ok()?,
                since_ms: fields.next()?.parse().ok()?,
            };
            match kind {
                "p" => record.pending.push(reservation),
                "r" => record.released.push(reservation),
                _ => return None,
            }
        }
        Some(record)
    }

    /// The record as stored.
    pub fn encode(&self) -> String {
        let mut text = self.count.to_string();
        for (kind, list) in [("p", &self.pending), ("r", &self.released)] {
            for r in list {
                text.push_str(&format!(
                    "\n{kind} {} {} {}",
                    r.order, r.quantity, r.since_ms
                ));
            }
        }
        text
    }

    /// Whether `order` has units reserved here, waiting.
    pub fn holds(&self, order: &str) -> bool {
        self.pending.iter().any(|r| r.order == order)
    }

    /// Notes `quantity` units (already taken from the count) as `order`'s.
    pub fn hold(&mut self, order: &str, quantity: u32, now_ms: u64) {
        self.pending.push(Reservation {
            order: order.to_string(),
            quantity,
            since_ms: now_ms,
        });
    }

    /// Makes `order`'s reservation final; whether it had one waiting.
    pub fn confirm(&mut self, order: &str) -> bool {
        let before = self.pending.len();
        self.pending.retain(|r| r.order != order);
        self.pending.len() != before
    }

    /// Forgets that `order`'s units were given back; how many they were.
    pub fn take_released(&mut self, order: &str) -> Option<u32> {
        let at = self.released.iter().position(|r| r.order == order)?;
        Some(self.released.remove(at).quantity)
    }

    /// Gives back the units of every reservation made before `cutoff_ms`,
    /// remembering each as released at `now_ms`; returns how many
    /// reservations.
    pub fn release_older_than(&mut self, cutoff_ms: u64, now_ms: u64) -> u32 {
        let mut released = 0;
        let (old, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|r| r.since_ms < cutoff_ms);
        self.pending = waiting;
        for mut reservation in old {
            self.count = self.count.saturating_add(reservation.quantity);
            reservation.since_ms = now_ms;
            self.released.push(reservation);
            released += 1;
        }
        released
    }

    /// Drops released reservations noted before `cutoff_ms`; how many.
    pub fn forget_released_before(&mut self, cutoff_ms: u64) -> u32 {
        let before = self.released.len();
        self.released.retain(|r| r.since_ms >= cutoff_ms);
        (before - self.released.len()) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_count_is_a_record() {
        let record = Record::decode("42").unwrap();
        assert_eq!(record.count, 42);
        assert_eq!(record.encode(), "42");
        assert!(Record::decode("-1").is_none());
        assert!(Record::decode("7\nx 1 2 3").is_none());
    }

    #[test]
    fn reservations_wait_are_confirmed_or_come_back() {
        let mut record = Record::decode("10").unwrap();
        record.count -= 3;
        record.hold("1", 3, 1_000);
        record.count -= 2;
        record.hold("2", 2, 5_000);
        let mut record = Record::decode(&record.encode()).unwrap();
        assert!(record.holds("1") && record.holds("2"));
        assert!(record.confirm("2"));
        assert!(!record.confirm("2"));
        assert_eq!(record.release_older_than(2_000, 9_000), 1);
        assert_eq!(record.count, 8);
        assert_eq!(record.take_released("1"), Some(3));
        assert_eq!(record.take_released("1"), None);
        record.hold("3", 1, 9_000);
        assert_eq!(record.release_older_than(20_000, 20_000), 1);
        assert_eq!(record.forget_released_before(20_001), 1);
        assert_eq!(record.encode(), "9");
    }
}
