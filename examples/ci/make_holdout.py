"""Write the held-out iris rows (the ones train_iris.py does not train on) as holdout.parquet.

In a real project this file comes from your data pipeline; the validation gate only needs the
model's input columns and the target column.
"""

from __future__ import annotations

import sys

from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split


def main(path: str = "holdout.parquet") -> None:
    iris = load_iris(as_frame=True)
    species = iris.target_names[iris.target]
    _, X_test, _, y_test = train_test_split(
        iris.data, species, test_size=0.3, random_state=0, stratify=species
    )
    holdout = X_test.assign(species=y_test)
    holdout.to_parquet(path, index=False)
    print(f"wrote {len(holdout)} rows to {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
