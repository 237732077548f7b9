//! Phone numbers and country calling codes (see the phone helper).
