//! The proxy's only source of randomness: SplitMix64, seeded per draw from the run's seed,
//! the operation and how many times that operation has been seen.
//!
//! Why keyed draws rather than one stream: the deployer sends independent requests in
//! parallel, so the order in which requests of *different* operations reach the proxy varies
//! from run to run. With one sequential stream, that jitter would move every later fault to
//! another request. Drawing from `(seed, "service:Operation", n)` makes "the 3rd
//! `iam:CreateUser` is throttled" a fact of the seed, whatever arrives in between; retries
//! are simply the next occurrences of their operation and get draws of their own.

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and good enough to spread faults;
/// nothing here needs cryptographic quality.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits (the precision of an `f64`).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The generator for the `occurrence`-th request (counting from 0) of operation `key`.
pub fn keyed(seed: u64, key: &str, occurrence: u64) -> SplitMix64 {
    // Each input goes through a full mixing round, so nearby seeds or occurrences do not give
    // correlated streams.
    let mut mixer = SplitMix64::new(seed);
    let seeded = mixer.next_u64();
    let mut mixer = SplitMix64::new(seeded ^ fnv1a(key.as_bytes()));
    let keyed = mixer.next_u64();
    let mut mixer = SplitMix64::new(keyed ^ occurrence);
    SplitMix64::new(mixer.next_u64())
}

/// FNV-1a, 64 bits: a stable hash of the operation name (std's hasher is randomly keyed per
/// process, which would defeat reproducibility).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xCBF2_9CE4_8422_2325u64;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of the reference implementation for seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn keyed_draws_depend_on_seed_key_and_occurrence_only() {
        let draw = |seed, key, n| keyed(seed, key, n).next_u64();
        assert_eq!(draw(7, "iam:CreateUser", 3), draw(7, "iam:CreateUser", 3));
        assert_ne!(draw(7, "iam:CreateUser", 3), draw(8, "iam:CreateUser", 3));
        assert_ne!(draw(7, "iam:CreateUser", 3), draw(7, "iam:CreateRole", 3));
        assert_ne!(draw(7, "iam:CreateUser", 3), draw(7, "iam:CreateUser", 4));
    }

    #[test]
    fn unit_draws_are_spread_over_the_interval() {
        let draws: Vec<f64> = (0..10_000)
            .map(|n| keyed(42, "s3:PutObject", n).next_f64())
            .collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let below = draws.iter().filter(|&&u| u < 0.2).count();
        // 20 % ± 1.5 % of 10 000 draws: about five standard deviations either side.
        assert!((1_850..=2_150).contains(&below), "{below} draws below 0.2");
    }
}
