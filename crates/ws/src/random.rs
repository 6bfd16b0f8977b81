//! Masking keys from the operating system's random source (feature `getrandom`).

use crate::connection::MaskSource;

/// A [`MaskSource`] that draws keys from `getrandom`, 64 keys per system call.
#[derive(Debug, Clone)]
pub struct GetrandomMask {
    pool: [u8; 256],
    used: usize,
}

impl GetrandomMask {
    /// A new source (the pool is filled on first use).
    pub fn new() -> Self {
        Self {
            pool: [0; 256],
            used: 256,
        }
    }
}

impl Default for GetrandomMask {
    fn default() -> Self {
        Self::new()
    }
}

impl MaskSource for GetrandomMask {
    /// # Panics
    /// If the operating system has no random source (`getrandom` fails), since sending with
    /// predictable masking keys would be unsafe.
    fn mask_key(&mut self) -> [u8; 4] {
        if self.used + 4 > self.pool.len() {
            getrandom::fill(&mut self.pool).expect("the OS random source failed");
            self.used = 0;
        }
        let key = [
            self.pool[self.used],
            self.pool[self.used + 1],
            self.pool[self.used + 2],
            self.pool[self.used + 3],
        ];
        self.used += 4;
        key
    }
}
