//! A faithful local stand-in for the three vendors (see SPEC §7).
