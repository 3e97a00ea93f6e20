mod encoding;
pub mod sign;
