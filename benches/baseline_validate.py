"""The validation a user would write without ferry: the baseline of `cargo bench -- speed`.

Reads a calls manifest (eventId,name,company,countryCode,mobile,areaCode,phone) with the
csv module, checks each row with phonenumbers (Google's libphonenumber, ported), refuses
a number given twice, and writes valid.csv and failed.csv. It checks less than ferry
(no landlines, no lengths, no spreadsheet safety, no workbook) and is as plain as such a
script usually is.

usage: python3 baseline_validate.py MANIFEST OUT_DIR
"""

import csv
import os
import sys

import phonenumbers


def problems_of(row, seen, line):
    problems = []
    try:
        int(row["eventId"])
    except ValueError:
        problems.append("eventId: not a whole number")
    if not row["name"].strip():
        problems.append("name: required")
    key = None
    try:
        region = phonenumbers.region_code_for_country_code(int(row["countryCode"] or 0))
        national = row["mobile"] or (row["areaCode"] + row["phone"])
        number = phonenumbers.parse(national, region)
        if phonenumbers.is_valid_number(number):
            key = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        else:
            problems.append("mobile: not a valid number")
    except (ValueError, phonenumbers.NumberParseException) as e:
        problems.append("mobile: " + str(e))
    if key is not None:
        first = seen.setdefault(key, line)
        if first != line:
            problems.append("mobile: same number as row %d" % first)
    return problems


def main(manifest, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    seen = {}
    with open(manifest, newline="", encoding="utf-8-sig") as src, open(
        os.path.join(out_dir, "valid.csv"), "w", newline="", encoding="utf-8"
    ) as valid, open(
        os.path.join(out_dir, "failed.csv"), "w", newline="", encoding="utf-8"
    ) as failed:
        reader = csv.DictReader(src)
        valid_out = csv.writer(valid)
        failed_out = csv.writer(failed)
        valid_out.writerow(["row"] + reader.fieldnames)
        failed_out.writerow(["row", "problems"] + reader.fieldnames)
        counts = [0, 0]
        for line, row in enumerate(reader, start=2):
            problems = problems_of(row, seen, line)
            cells = [row[f] for f in reader.fieldnames]
            if problems:
                failed_out.writerow([line, "; ".join(problems)] + cells)
                counts[1] += 1
            else:
                valid_out.writerow([line] + cells)
                counts[0] += 1
    print("%d valid, %d failed" % tuple(counts))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
