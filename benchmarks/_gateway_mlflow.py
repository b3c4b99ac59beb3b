"""MLflow's side of benchmarks/gateway.py; runs in MLflow's own venv (.bench/mlflow).

Usage: python _gateway_mlflow.py '{"model": "/tmp/.../model.pkl"}'  ->  JSON on stdout.
Run it in an empty temporary folder: it logs the model there (SQLite, ./mlflow.db, and its
artifacts beside it; MLflow 3.17 refuses a plain file store by default), for
``mlflow models serve -m runs:/RUN_ID/model`` with MLFLOW_TRACKING_URI set to the same.
The model is the very object Shipyard registered as version 1 (pickled by the Shipyard side
with the same scikit-learn), so both servers hold the same fitted coefficients.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
from pathlib import Path

import mlflow
import mlflow.sklearn
import sklearn
from sklearn.datasets import load_iris

logging.getLogger("mlflow").setLevel(logging.ERROR)


def main() -> int:
    plan = json.loads(sys.argv[1])
    model = pickle.loads(Path(plan["model"]).read_bytes())
    X, _ = load_iris(return_X_y=True, as_frame=True)
    uri = f"sqlite:///{os.path.abspath('mlflow.db')}"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=X[:5],
            # Listed, so that MLflow does not infer them in a subprocess.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    print(
        json.dumps(
            {
                "tracking_uri": uri,
                "model_uri": f"runs:/{run.info.run_id}/model",
                "mlflow": mlflow.__version__,
                "sklearn": sklearn.__version__,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
