//! publishers → arctos createTaskPublisher (`POST /api/task/customer/do_add`). Rows of
//! one task travel together in the request's `customer` array.

use serde::Serialize;

use super::{task_ref, Ctx, Item, TaskRef};
use crate::problem::Code;
use crate::validate::phone::{self, Expect};
use crate::validate::{Checker, Need};

pub const FIELDS: &[&str] = &[
    "task_num",
    "out_task_num",
    "customer_title",
    "customer_name",
    "customer_id_num",
    "customer_country_code",
    "customer_phone",
    "customer_email",
];
const TASK_NUM: usize = 0;
const OUT_TASK_NUM: usize = 1;
const TITLE: usize = 2;
const NAME: usize = 3;
const ID_NUM: usize = 4;
const COUNTRY_CODE: usize = 5;
const PHONE: usize = 6;
const EMAIL: usize = 7;

pub const REQUIRED_COLUMNS: &[&[&str]] = &[
    &["task_num", "out_task_num"],
    &["customer_name"],
    &["customer_id_num"],
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

pub(super) fn validate(c: &mut Checker, ctx: &Ctx) -> (Option<String>, Option<Item>) {
    let task = task_ref(c, TASK_NUM, OUT_TASK_NUM);
    let title = c.text(TITLE, Need::Optional);
    let name = c.text(NAME, Need::Required);
    let id_num = c.text(ID_NUM, Need::Required);
    let email = c.email(EMAIL);

    // The row's own code wins; the configured default only fills a gap.
    let row_cc = match c.cell(COUNTRY_CODE) {
        Some(raw) => match phone::country_code(raw, c.name(COUNTRY_CODE)) {
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
    if let Some(raw) = c.cell(PHONE) {
        match row_cc {
            Some(Ok(cc)) => match phone::phone(raw, cc, Expect::Any, c.name(PHONE)) {
                Ok(p) => {
                    c.push_warnings(p.warnings);
                    phone_digits = Some(p.number.national());
                }
                Err(problems) => c.push_problems(problems),
            },
            Some(Err(())) => {}
            None => {
                let (phone, cc) = (c.name(PHONE), c.name(COUNTRY_CODE));
                c.problem(
                    COUNTRY_CODE,
                    Code::CountryCodeRequired,
                    format!("{phone} needs a country code: fill {cc} or set defaults.country_code in ferry.toml"),
                )
            }
        }
    }
    let country_code = match row_cc {
        Some(Ok(cc)) if c.cell(COUNTRY_CODE).is_some() || phone_digits.is_some() => {
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
