"""Train a classifier on the iris data set that scikit-learn ships, track it with Shipyard and
register it as a new version of the model "iris-clf".

python examples/train_iris.py         # then: shipyard runs ls -e iris; shipyard models ls
python examples/train_iris.py --alpha 0.5 --epochs 1   # a worse model, for the validation gate
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no screen needed

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import shipyard as sy


def main(epochs: int = 30, alpha: float = 1e-4) -> str:
    iris = load_iris(as_frame=True)
    frame = iris.frame
    species = iris.target_names[iris.target]  # class names, not codes
    X_train_df, X_test_df, y_train, y_test = train_test_split(
        iris.data, species, test_size=0.3, random_state=0, stratify=species
    )
    scaler = StandardScaler().fit(X_train_df)
    X_train, X_test = scaler.transform(X_train_df), scaler.transform(X_test_df)
    sy.set_experiment("iris")
    params = {"model": "sgd-logistic", "epochs": epochs, "alpha": alpha, "test_size": 0.3}
    with sy.start_run(name="sgd", params=params) as run:
        run.log_dataset(frame, name="iris", context="training", source="sklearn.load_iris")
        model = SGDClassifier(
            loss="log_loss", alpha=alpha, learning_rate="constant", eta0=0.05, random_state=0
        )
        classes = np.unique(species)
        losses = []
        for epoch in range(epochs):
            model.partial_fit(X_train, y_train, classes=classes)
            loss = log_loss(y_test, model.predict_proba(X_test), labels=classes)
            losses.append(loss)
            run.log_metrics(
                {"val_loss": loss, "val_acc": accuracy_score(y_test, model.predict(X_test))},
                step=epoch,
            )
        predicted = model.predict(X_test)
        run.log_metrics(
            {
                "accuracy": accuracy_score(y_test, predicted),
                "f1_macro": f1_score(y_test, predicted, average="macro"),
            }
        )
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(losses)
        ax.set(xlabel="epoch", ylabel="validation log loss", title="iris / SGD")
        run.log_figure(fig, "plots/val_loss.png")
        plt.close(fig)
        run.log_dict(
            {"classes": list(iris.target_names), "features": list(iris.feature_names)},
            "labels.json",
        )
        run.set_tags({"data": "iris"})
        # The scaler and the classifier are both fitted; together they take raw measurements.
        pipeline = Pipeline([("scale", scaler), ("clf", model)])
        logged = run.log_model(pipeline, "iris-clf", input_example=X_train_df[:5])
    print(f"run {run.id}: accuracy {sy.get_run(run.id).metrics['accuracy']:.3f}, {logged.uri}")
    return run.id


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--alpha", type=float, default=1e-4)
    args = parser.parse_args()
    main(args.epochs, args.alpha)
