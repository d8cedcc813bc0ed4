"""Our reader of the JSONL archive, the one `make verify` uses, on objects as the S3 sink writes them."""

import gzip
import json
from decimal import Decimal

from operations.smoke import archived_records


def test_a_value_holding_unicode_line_separators_is_one_record():
    values = [{"note": "a\u2028b\u2029c\x85d\x0ce"}, {"amount": 1.50}]
    body = gzip.compress("".join(json.dumps(value, ensure_ascii=False) + "\n" for value in values).encode())
    records = archived_records("cdc/t/partition=0/t+0+0+1+id.jsonl.gz", body)
    assert records == [{"note": "a\u2028b\u2029c\x85d\x0ce"}, {"amount": Decimal("1.50")}]
