"""Train a classifier on the iris data set that scikit-learn ships, and track it with Shipyard.

python examples/train_iris.py            # then: shipyard runs ls -e iris
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
from sklearn.preprocessing import StandardScaler

import shipyard as sy


def main(epochs: int = 30, alpha: float = 1e-4) -> str:
    iris = load_iris(as_frame=True)
    frame = iris.frame
    X_train, X_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.3, random_state=0, stratify=iris.target
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    sy.set_experiment("iris")
    params = {"model": "sgd-logistic", "epochs": epochs, "alpha": alpha, "test_size": 0.3}
    with sy.start_run(name="sgd", params=params) as run:
        run.log_dataset(frame, name="iris", context="training", source="sklearn.load_iris")
        model = SGDClassifier(
            loss="log_loss", alpha=alpha, learning_rate="constant", eta0=0.05, random_state=0
        )
        classes = np.unique(iris.target)
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
    print(f"run {run.id}: accuracy {sy.get_run(run.id).metrics['accuracy']:.3f}")
    return run.id


if __name__ == "__main__":
    main()
