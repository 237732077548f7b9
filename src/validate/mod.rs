//! Validation rules shared by the kinds: plain values, time, lists, e-mail and phones.

pub mod phone;
