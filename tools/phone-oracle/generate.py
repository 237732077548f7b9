#!/usr/bin/env python3
"""Generate tests/data/phone_oracle.tsv.gz: reference verdicts for ferry's phone checks.

The reference is Python `phonenumbers` pinned to 9.0.42, whose metadata is the same
libphonenumber v9.0.42 metadata that rlibphonenumber 2.2.15 (used by ferry) carries.
See README.md next to this file for the spellings and the verdict rule.

Usage:
    python3 tools/phone-oracle/generate.py [--out PATH] [--report]

The output is deterministic: fixed seed, sorted lines, gzip with mtime=0 and no file
name in the header, so two runs give the same bytes. `--report` prints statistics
(lines per calling code, share valid per spelling, types, spellings whose verdict
differs from the `+cc nsn` reading) to stderr; it does not change the output.
"""

import argparse
import collections
import gzip
import io
import itertools
import os
import random
import re
import sys
import time

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumberFormat,
    PhoneNumberType,
)

PHONENUMBERS_VERSION = "9.0.42"
SEED = 20250942
KINDS = ("nsn", "national", "intl", "00", "idd", "fullwidth")

# Calling code -> number of base numbers to generate. The call list is weighted toward
# Asia-Pacific (Taiwan, mainland China and Hong Kong most) and Europe.
QUOTA = {
    # Asia-Pacific
    886: 6000, 86: 6000, 852: 6000,
    81: 4000, 82: 4000, 65: 4000, 60: 4000, 66: 4000, 84: 4000, 63: 4000,
    62: 4000, 91: 4000, 61: 4000, 64: 4000,
    # Europe
    44: 3000, 49: 3000, 33: 3000, 39: 3000, 34: 3000, 31: 3000, 41: 3000,
    43: 3000, 46: 3000, 48: 3000, 7: 3000,
    # Americas, Africa, Middle East
    1: 1800, 55: 1800, 52: 1800, 54: 1800, 27: 1800, 971: 1800, 972: 1800,
}

# Share of each calling code's base numbers that should be valid (as `+cc nsn`).
VALID_SHARE = 0.65

# How a randomised candidate is made (the examples themselves are always included).
STRATEGY_WEIGHTS = (("same_length", 70), ("off_by_one", 15), ("random", 15))

# Which example a variant starts from: mobiles and landlines get most of the draws.
TYPE_WEIGHT = {PhoneNumberType.MOBILE: 35, PhoneNumberType.FIXED_LINE: 35}
OTHER_TYPES_WEIGHT = 30  # shared among the region's other supported types

TYPE_NAMES = {
    getattr(PhoneNumberType, name): name
    for name in (
        "FIXED_LINE", "MOBILE", "FIXED_LINE_OR_MOBILE", "TOLL_FREE", "PREMIUM_RATE",
        "SHARED_COST", "VOIP", "PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL", "UNKNOWN",
    )
}

FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))

RULE = [
    "verdict of a line: phonenumbers.parse(input, region) where region is",
    "  phonenumbers.region_code_for_country_code(cc) (the main region: US for 1, GB for 44,",
    "  RU for 7); a parse error, a parsed country code other than cc, or",
    "  is_valid_number() false gives 'invalid'; otherwise '<E164>,<TYPE>' with",
    "  format_number(n, E164) and the PhoneNumberType name of number_type(n).",
    "exception, by design: spelling '00' is judged as '+' followed by the digits after the",
    "  '00', i.e. parse('+' + cc + nsn, region): ferry reads a leading 00<cc> as the ITU E.123",
    "  international prefix whatever the region's own IDD is (phonenumbers would read",
    "  '00886...' with region TW as Taiwan's IDD '008' followed by '86...').",
]


# ---------------------------------------------------------------------------------------
# verdicts


def parse_or_none(text, region):
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def verdict(text, cc, region):
    n = parse_or_none(text, region)
    if n is None or n.country_code != cc or not phonenumbers.is_valid_number(n):
        return "invalid"
    e164 = phonenumbers.format_number(n, PhoneNumberFormat.E164)
    return "%s,%s" % (e164, TYPE_NAMES[phonenumbers.number_type(n)])


def valid_international(cc, nsn, region):
    """The number parsed from +cc nsn, or None when that is not a valid number of cc."""
    n = parse_or_none("+%d%s" % (cc, nsn), region)
    if n is None or n.country_code != cc or not phonenumbers.is_valid_number(n):
        return None
    return n


# ---------------------------------------------------------------------------------------
# a region's own international prefix


def own_idd(region):
    """The digits a caller in `region` dials before a foreign calling code, when that is
    something other than 00; None when the region has none or its IDD is 00.

    preferred_international_prefix when present (a '~', "wait for dial tone", removed:
    Russia's '8~10' is '810'); else international_prefix when it is plain digits; else,
    when international_prefix is a pattern that does not accept '00' itself, the shortest
    (then smallest) digit string it accepts that is not all zeros (Taiwan
    '0(?:0[25-79]|19)' gives '002', Korea '001', Singapore '001', Brazil '0012')."""
    meta = PhoneMetadata.metadata_for_region(region)
    preferred = (meta.preferred_international_prefix or "").replace("~", "")
    if preferred:
        return preferred if preferred.isdigit() and preferred != "00" else None
    pattern = meta.international_prefix or ""
    if not pattern:
        return None
    if pattern.isdigit():
        return pattern if pattern != "00" else None
    compiled = re.compile(pattern)
    if compiled.fullmatch("00"):
        return None
    for length in range(1, 7):
        for digits in itertools.product("0123456789", repeat=length):
            s = "".join(digits)
            if s.strip("0") and compiled.fullmatch(s):
                return s
    return None


# ---------------------------------------------------------------------------------------
# base numbers


def examples_for(region):
    """[(type, nsn)] for every supported type of the region that has an example."""
    out = []
    for t in sorted(phonenumbers.supported_types_for_region(region)):
        n = phonenumbers.example_number_for_type(region, t)
        if n is not None:
            out.append((t, phonenumbers.national_significant_number(n)))
    return out


def random_digits(rng, count):
    return "".join(rng.choice("0123456789") for _ in range(count))


def base_numbers(cc, quota, rng):
    """[(nsn, valid, source)] for one calling code: its examples, then randomised variants kept
    until `quota` numbers are collected, about VALID_SHARE of them valid."""
    region = phonenumbers.region_code_for_country_code(cc)
    meta = PhoneMetadata.metadata_for_region(region)
    examples = examples_for(region)
    lengths = sorted(set(meta.general_desc.possible_length) | {len(e) for _, e in examples})
    lengths = [l for l in lengths if l >= 2] or [len(examples[0][1])]

    type_weights = []
    others = [t for t, _ in examples if t not in TYPE_WEIGHT]
    for t, _ in examples:
        type_weights.append(TYPE_WEIGHT.get(t, OTHER_TYPES_WEIGHT / max(1, len(others))))
    strategies = [s for s, _ in STRATEGY_WEIGHTS]
    strategy_weights = [w for _, w in STRATEGY_WEIGHTS]

    want_valid = round(quota * VALID_SHARE)
    want_invalid = quota - want_valid
    chosen = {}  # nsn -> (valid, source), insertion ordered
    n_valid = n_invalid = 0

    for _, nsn in examples:
        if nsn not in chosen:
            ok = valid_international(cc, nsn, region) is not None
            chosen[nsn] = (ok, "example")
            n_valid += ok
            n_invalid += not ok

    attempts = 0
    while (n_valid < want_valid or n_invalid < want_invalid) and attempts < quota * 200:
        attempts += 1
        strategy = rng.choices(strategies, strategy_weights)[0]
        if strategy == "random":
            nsn = random_digits(rng, rng.choice(lengths))
        else:
            _, example = rng.choices(examples, type_weights)[0]
            keep = rng.randint(1, max(1, min(4, len(example) - 1)))
            length = len(example)
            if strategy == "off_by_one":
                length += rng.choice((-1, 1))
            length = max(length, keep + 1)
            nsn = example[:keep] + random_digits(rng, length - keep)
        if nsn in chosen:
            continue
        ok = valid_international(cc, nsn, region) is not None
        if ok and n_valid < want_valid:
            n_valid += 1
        elif not ok and n_invalid < want_invalid:
            n_invalid += 1
        else:
            continue
        chosen[nsn] = (ok, strategy)
    return [(nsn, ok, source) for nsn, (ok, source) in chosen.items()]


# ---------------------------------------------------------------------------------------
# spellings


def spellings(cc, nsn, region, idd, dashes):
    """[(kind, input, text_to_judge)] for one base number."""
    meta = PhoneMetadata.metadata_for_region(region)
    n = valid_international(cc, nsn, region)
    out = [("nsn", nsn, nsn)]

    if n is not None:
        national = phonenumbers.format_number(n, PhoneNumberFormat.NATIONAL)
        intl = phonenumbers.format_number(n, PhoneNumberFormat.INTERNATIONAL)
    else:
        national = (meta.national_prefix or "") + nsn
        intl = "+%d %s" % (cc, nsn)
    if national != nsn:
        out.append(("national", national, national))
    else:
        national = None
    out.append(("intl", intl, intl))
    out.append(("00", "00%d%s" % (cc, nsn), "+%d%s" % (cc, nsn)))
    if idd is not None:
        text = "%s%d%s" % (idd, cc, nsn)
        out.append(("idd", text, text))
    wide = (national if national is not None else nsn).translate(FULLWIDTH)
    if dashes:
        wide = wide.replace(" ", "-")
    out.append(("fullwidth", wide, wide))
    return out


# ---------------------------------------------------------------------------------------
# main


def generate():
    rng = random.Random(SEED)
    bases = []  # (cc, nsn, valid, source)
    for cc in sorted(QUOTA):
        for nsn, ok, source in base_numbers(cc, QUOTA[cc], rng):
            bases.append((cc, nsn, ok, source))
    bases.sort(key=lambda b: (b[0], b[1]))

    idds = {cc: own_idd(phonenumbers.region_code_for_country_code(cc)) for cc in QUOTA}
    rows = []  # (cc, nsn, kind, input, verdict)
    for index, (cc, nsn, _, _) in enumerate(bases):
        region = phonenumbers.region_code_for_country_code(cc)
        for kind, text, judged in spellings(cc, nsn, region, idds[cc], index % 2 == 1):
            rows.append((cc, nsn, kind, text, verdict(judged, cc, region)))
    return bases, idds, rows


def render(bases, idds, rows):
    regions = ", ".join(
        "%d=%s%s" % (cc, phonenumbers.region_code_for_country_code(cc),
                     "" if idds[cc] is None else " idd " + idds[cc])
        for cc in sorted(QUOTA)
    )
    header = [
        "phone oracle: reference verdicts for ferry's phone validation",
        "generator: tools/phone-oracle/generate.py (see tools/phone-oracle/README.md)",
        "phonenumbers %s (libphonenumber metadata v%s), seed %d"
        % (phonenumbers.__version__, PHONENUMBERS_VERSION, SEED),
        "%d base numbers (cc, nsn), %d lines" % (len(bases), len(rows)),
        "regions: " + regions,
        "columns: cc<TAB>spelling_kind<TAB>input<TAB>verdict",
        "spelling kinds: " + " ".join(KINDS),
    ] + RULE
    buf = io.StringIO()
    for line in header:
        buf.write("# " + line + "\n")
    for cc, _, kind, text, v in rows:
        assert "\t" not in text and "\n" not in text
        buf.write("%d\t%s\t%s\t%s\n" % (cc, kind, text, v))
    raw = buf.getvalue().encode("utf-8")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return raw, out.getvalue()


def report(bases, idds, rows, raw, packed, seconds):
    p = lambda *a: print(*a, file=sys.stderr)
    p("time: %.1f s" % seconds)
    p("size: %d bytes uncompressed, %d bytes gzip" % (len(raw), len(packed)))
    p("base numbers: %d (valid as +cc nsn: %.1f%%), lines: %d"
      % (len(bases), 100.0 * sum(b[2] for b in bases) / len(bases), len(rows)))
    p("idd used: " + ", ".join("%d:%s" % (cc, idds[cc]) for cc in sorted(idds) if idds[cc]))

    p("\nbase numbers by source (valid/total):")
    src_all = collections.Counter(b[3] for b in bases)
    src_valid = collections.Counter(b[3] for b in bases if b[2])
    for src in ("example", "same_length", "off_by_one", "random"):
        p("  %-12s %6d / %6d  (%5.1f%% valid)" % (src, src_valid[src], src_all[src],
                                                 100.0 * src_valid[src] / max(1, src_all[src])))

    per_cc = collections.Counter(r[0] for r in rows)
    base_cc = collections.Counter(b[0] for b in bases)
    valid_cc = collections.Counter(b[0] for b in bases if b[2])
    type_cc = collections.defaultdict(collections.Counter)
    for cc, _, kind, _, v in rows:
        if kind == "00":
            type_cc[cc]["invalid" if v == "invalid" else v.split(",")[1]] += 1
    p("\nper cc: region bases valid%% lines | base numbers: MOBILE FIXED_LINE FL_OR_MOBILE other")
    for cc in sorted(per_cc):
        t = type_cc[cc]
        other = base_cc[cc] - t["invalid"] - t["MOBILE"] - t["FIXED_LINE"] - t["FIXED_LINE_OR_MOBILE"]
        p("  %4d %s %6d %5.1f%% %7d | %5d %5d %5d %5d"
          % (cc, phonenumbers.region_code_for_country_code(cc), base_cc[cc],
             100.0 * valid_cc[cc] / base_cc[cc], per_cc[cc],
             t["MOBILE"], t["FIXED_LINE"], t["FIXED_LINE_OR_MOBILE"], other))

    p("\nshare valid per spelling kind:")
    total = collections.Counter(r[2] for r in rows)
    valid = collections.Counter(r[2] for r in rows if r[4] != "invalid")
    for k in KINDS:
        p("  %-9s %7d lines  %5.1f%% valid" % (k, total[k], 100.0 * valid[k] / total[k]))
    p("  %-9s %7d lines  %5.1f%% valid" % ("all", len(rows), 100.0 * sum(valid.values()) / len(rows)))

    p("\ntypes (all valid lines):")
    types = collections.Counter(r[4].split(",")[1] for r in rows if r[4] != "invalid")
    for t, c in types.most_common():
        p("  %-22s %7d" % (t, c))
    types00 = collections.Counter(r[4].split(",")[1] for r in rows
                                  if r[2] == "00" and r[4] != "invalid")
    p("types (one per base number, '00' spelling):")
    for t, c in types00.most_common():
        p("  %-22s %7d" % (t, c))

    # spellings whose verdict differs from the '+cc nsn' reading (the '00' line)
    by_base = collections.OrderedDict()
    for cc, nsn, kind, text, v in rows:
        by_base.setdefault((cc, nsn), {})[kind] = (text, v)
    diffs = collections.defaultdict(collections.Counter)  # cc -> (kind, how) -> count
    examples = collections.defaultdict(list)
    for (cc, nsn), kinds in by_base.items():
        ref = kinds["00"][1]
        for kind in KINDS:
            if kind == "00" or kind not in kinds:
                continue
            text, v = kinds[kind]
            if v == ref:
                continue
            if ref == "invalid":
                how = "+cc nsn invalid, %s valid" % kind
            elif v == "invalid":
                how = "+cc nsn valid, %s invalid" % kind
            else:
                how = "both valid, %s reads another number/type" % kind
            diffs[cc][how] += 1
            if len(examples[(cc, how)]) < 3:
                examples[(cc, how)].append("%s=%r -> %s  (+cc nsn: %s)" % (kind, text, v, ref))
    p("\nspellings whose verdict differs from '+cc nsn' (the '00' verdict):")
    p("  total: %d" % sum(sum(c.values()) for c in diffs.values()))
    for cc in sorted(diffs):
        p("  %d %s: %d" % (cc, phonenumbers.region_code_for_country_code(cc),
                           sum(diffs[cc].values())))
        for how, c in sorted(diffs[cc].items()):
            p("      %6d  %s" % (c, how))
            for e in examples[(cc, how)]:
                p("              e.g. " + e)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.normpath(os.path.join(here, "..", "..", "tests", "data",
                                                "phone_oracle.tsv.gz"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--report", action="store_true", help="print statistics to stderr")
    args = ap.parse_args()

    if phonenumbers.__version__ != PHONENUMBERS_VERSION:
        sys.exit("phonenumbers %s is installed; this oracle needs exactly %s "
                 "(pip install -r tools/phone-oracle/requirements.txt)"
                 % (phonenumbers.__version__, PHONENUMBERS_VERSION))

    start = time.monotonic()
    bases, idds, rows = generate()
    raw, packed = render(bases, idds, rows)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(packed)
    os.replace(tmp, args.out)
    seconds = time.monotonic() - start
    print("wrote %s: %d base numbers, %d lines, %d bytes (%.1f s)"
          % (args.out, len(bases), len(rows), len(packed), seconds), file=sys.stderr)
    if args.report:
        report(bases, idds, rows, raw, packed, seconds)


if __name__ == "__main__":
    main()
