//! The one-shot delivery arming and the closed flag a buffer's posts read,
//! in one word.
//!
//! The owner asks to be told when data arrives ([`Arm::Notify`]) or to have
//! it sent ([`Arm::Active`]); the first post that stores a message into an
//! armed buffer disarms it and reports which wake-up to perform:
//!
//! | state | event                      | next  | effect                    |
//! |-------|----------------------------|-------|---------------------------|
//! | Off   | `arm(m)`, buffer empty     | m     | none                      |
//! | Off   | `arm(m)`, buffer holds data| Off   | caller delivers now       |
//! | m     | a post stores a message    | Off   | the post returns wake-up m|
//! | m     | `disarm`, close            | Off   | none                      |
//!
//! No wake-up is lost as long as the buffer's [`Flags::arm`] and its posts
//! agree on the order of "count the message" and "read the arming" (each
//! buffer arms under the locks its posts count under).

use serde::{Deserialize, Serialize};

use crate::sync::{AtomicU32, Ordering};

/// What the owner asked for when data arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arm {
    /// Nothing.
    Off,
    /// A one-word notice (`{mail, Box, new_data}`).
    Notify,
    /// The messages themselves.
    Active,
}

const CLOSED: u32 = 1;
const NOTIFY: u32 = 2;
const ACTIVE: u32 = 4;
const ARMED: u32 = NOTIFY | ACTIVE;

/// The arming and the closed flag.
#[derive(Debug, Default)]
pub struct Flags(AtomicU32);

fn arm_of(flags: u32) -> Arm {
    if flags & ACTIVE != 0 {
        Arm::Active
    } else if flags & NOTIFY != 0 {
        Arm::Notify
    } else {
        Arm::Off
    }
}

impl Flags {
    /// Open and unarmed.
    pub fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Disarms for a post that stored a message; returns the wake-up.
    pub fn take_arm(&self) -> Arm {
        if self.0.load(Ordering::Acquire) & ARMED == 0 {
            return Arm::Off;
        }
        arm_of(self.0.fetch_and(!ARMED, Ordering::AcqRel))
    }

    /// Arms for `mode` unless `holds_data` (then disarms and returns
    /// `false`: the caller delivers now).
    pub fn arm(&self, mode: Arm, holds_data: bool) -> bool {
        self.0.fetch_and(!ARMED, Ordering::AcqRel);
        if holds_data {
            return false;
        }
        let bits = match mode {
            Arm::Off => 0,
            Arm::Notify => NOTIFY,
            Arm::Active => ACTIVE,
        };
        self.0.fetch_or(bits, Ordering::AcqRel);
        true
    }

    /// The current arming.
    pub fn armed(&self) -> Arm {
        arm_of(self.0.load(Ordering::Acquire))
    }

    /// Disarms.
    pub fn disarm(&self) {
        self.0.fetch_and(!ARMED, Ordering::AcqRel);
    }

    /// Marks closed and disarms; `false` when it was closed already.
    pub fn close(&self) -> bool {
        if self.0.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED != 0 {
            return false;
        }
        self.disarm();
        true
    }

    /// Whether closed.
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CLOSED != 0
    }
}
