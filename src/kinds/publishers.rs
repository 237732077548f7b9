//! publishers → arctos createTaskPublisher (`POST /api/task/customer/do_add`). Rows of
//! one task travel together in the request's `customer` array.

use serde::Serialize;

use super::{task_ref, Ctx, Item, TaskRef};
use crate::problem::Code;
use crate::validate::phone::{self, Expect};
use crate::validate::{Checker, Need};

fields! {
    TaskNum = "task_num",
    OutTaskNum = "out_task_num",
    CustomerTitle = "customer_title",
    CustomerName = "customer_name",
    CustomerIdNum = "customer_id_num",
    CustomerCountryCode = "customer_country_code",
    CustomerPhone = "customer_phone",
    CustomerEmail = "customer_email",
}

pub const REQUIRED_COLUMNS: &[&[Field]] = &[
    &[Field::TaskNum, Field::OutTaskNum],
    &[Field::CustomerName],
    &[Field::CustomerIdNum],
];

#[derive(Clone, Debug, PartialEq)]
pub struct Publisher {
    pub task: TaskRef,
    pub customer: Customer,
}

/// One element of the request's `customer` array.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Customer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_title: Option<String>,
    pub customer_name: String,
    pub customer_id_num: String,
    /// `+886`, the vendor example's form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_country_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
}

pub(super) fn validate(c: &mut Checker<Field>, ctx: &Ctx) -> (Option<String>, Option<Item>) {
    let task = task_ref(c, Field::TaskNum, Field::OutTaskNum);
    let title = c.text(Field::CustomerTitle, Need::Optional);
    let name = c.text(Field::CustomerName, Need::Required);
    let id_num = c.id(Field::CustomerIdNum, Need::Required);
    let email = c.email(Field::CustomerEmail);

    // The row's own code wins; the configured default only fills a gap.
    let row_cc = match c.cell(Field::CustomerCountryCode) {
        Some(raw) => match phone::country_code(raw, c.name(Field::CustomerCountryCode)) {
            Ok(cc) => Some(Ok(cc)),
            Err(p) => {
                c.push_problems([p]);
                Some(Err(()))
            }
        },
        None => ctx.country_code.map(Ok),
    };
    // arctos takes the national format's digits, trunk `0` included (`0911211211`).
    let mut phone_digits = None;
    if let Some(raw) = c.cell(Field::CustomerPhone) {
        match row_cc {
            Some(Ok(cc)) => {
                match phone::phone(raw, cc, Expect::Any, c.name(Field::CustomerPhone)) {
                    Ok(p) => {
                        c.push_warnings(p.warnings);
                        phone_digits = Some(p.number.national());
                    }
                    Err(problems) => c.push_problems(problems),
                }
            }
            Some(Err(())) => {}
            None => {
                let (phone, cc) = (
                    c.name(Field::CustomerPhone),
                    c.name(Field::CustomerCountryCode),
                );
                c.problem(
                    Field::CustomerCountryCode,
                    Code::CountryCodeRequired,
                    format!("{phone} needs a country code: fill {cc} or set defaults.country_code in ferry.toml"),
                )
            }
        }
    }
    let country_code = match row_cc {
        Some(Ok(cc)) if c.cell(Field::CustomerCountryCode).is_some() || phone_digits.is_some() => {
            Some(format!("+{cc}"))
        }
        _ => None,
    };

    let key = match (&task, &id_num) {
        (Some(t), Some(id)) => Some(format!("{}|{id}", t.key_part())),
        _ => None,
    };
    let item = (|| {
        Some(Item::Publisher(Publisher {
            task: task?,
            customer: Customer {
                customer_title: title,
                customer_name: name?,
                customer_id_num: id_num?,
                customer_country_code: country_code,
                customer_phone: phone_digits,
                customer_email: email,
            },
        }))
    })();
    (key, item)
}
