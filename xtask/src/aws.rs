//! AWS SDK configuration: credential chain, region, endpoint override.
