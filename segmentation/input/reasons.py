"""The names every step of validation shares: the quarantine reasons a line can get, and the working columns that
travel with the lines (typed values, keys)."""

from __future__ import annotations

MALFORMED = "malformed_row"
MISSING_CUSTOMER = "missing_customer_id"
MISSING_INVOICE = "missing_invoice_id"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_NUMBER = "invalid_number"
NON_POSITIVE_PRICE = "non_positive_price"
ZERO_AMOUNT = "zero_amount"
IMPLAUSIBLE_VALUE = "implausible_value"  # beyond an input.limits value; LIMIT names which
AFTER_TODAY = "after_today"
DUPLICATE_LINE = "duplicate_line"
DUPLICATE_CUSTOMER = "duplicate_customer_id"
OUT_OF_WINDOW = "out_of_window"  # not a quarantine reason: the line is valid but dated outside the run's window

REASON = "reason"
TS = "_ts"
QTY = "_quantity"
PRICE = "_unit_price"
AMOUNT = "_amount"
LINE_ID = "_line_id"
LIMIT = "_limit"  # the input.limits key an implausible line is beyond (null for every other line)
LINE_HASH = "_line_hash"
LATER_VALID = "_later_valid"  # a line dated after the as-of date that passes the per-line checks (value holdout)
