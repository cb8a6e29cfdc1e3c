"""An MLP on Fashion-MNIST in 30 lines of imperative Gluon. Args: [EPOCHS] [TRAIN_SAMPLES]"""
import sys
import time

import loom as lm
from loom.gluon import data, loss, metric, nn, Trainer
from loom.gluon.data.vision import FashionMNIST, transforms

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
prep = transforms.Compose([transforms.ToTensor(), transforms.Normalize(0.286, 0.353)])
full = FashionMNIST(train=True).transform_first(prep)
subset = full if limit >= len(full) else data.SimpleDataset([full[i] for i in range(limit)])
train = data.DataLoader(subset, batch_size=128, shuffle=True)
test = data.DataLoader(FashionMNIST(train=False).transform_first(prep), batch_size=1000)
net = nn.Sequential()
net.add(nn.Flatten(), nn.Dense(256, activation="relu"), nn.Dense(10))
net.initialize(init="xavier")
trainer = Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3})
softmax_ce = loss.SoftmaxCrossEntropyLoss()
for epoch in range(epochs):
    start, acc = time.perf_counter(), metric.Accuracy()
    for x, y in train:
        with lm.autograd.record():
            batch_loss = softmax_ce(net(x), y)
        batch_loss.backward()
        trainer.step(x.shape[0])
    for x, y in test:
        acc.update(y, net(x))
    print(f"epoch {epoch + 1}: test accuracy {acc.get()[1]:.4f}, {time.perf_counter() - start:.1f} s")
