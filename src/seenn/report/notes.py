"""The report's prose: method notes, how energy and latency are made, the conversion branch,
SEENN-II; paragraphs as plain text (the sections typeset them)."""

METHOD_NOTES = """\
Accuracy at fixed T uses the accumulated logits z_t = O_1 + ... + O_t (argmax). AET (paper Eq. 4)
assumes a prediction that is correct at t stays correct; the empirical AET (Eq. 13) averages, per
sample, the first timestep that is actually correct (T if never). SEENN-I exits at the first t whose
score of softmax(z_t / temperature) exceeds alpha (strictly), else at T; scores are the top
confidence and 1 - normalized entropy. The temperature divides z_t for the confidence score only,
as in the authors' code, unless seenn1.entropy_temperature also applies it to the entropy score.
Unlike the authors (fixed alpha = 0.9, shuffled test set),
alpha is calibrated here on the validation split: the alpha with the fewest average timesteps whose
validation accuracy is within the configured tolerance of full-T accuracy. The test split is only
reported. The oracle stops each sample at its first correct timestep: the limit for any exit rule.
Spikes at exact ties: the LIF neuron fires when u - threshold > 0 (strictly, as the SPEC), the IF
neuron of the converted SNN when u >= threshold (as QCFS); the authors' tanh-surrogate LIF fires at
u - threshold >= 0. The rules differ only when a membrane lands exactly on the threshold."""

AUTHORS_PROTOCOL_NOTES = """\
Data protocol 'authors' (data.protocol), as the SEENN authors' code: the networks train on all
training images (the project's val split merged into train) and every selection that the project
makes on a validation split (SEENN-I's alpha, SEENN-II's rule and tradeoff points, the validation
columns) is made on the test split (val = test), so the test figures are not held out. CIFAR-10 is
normalized with std (0.2023, 0.1994, 0.2010) instead of (0.2470, 0.2435, 0.2616); with
autoaugment_cutout, AutoAugment fills with 128 and Cutout cuts a black (0) hole before
normalization instead of a mean-pixel hole after it."""

ENGINE_NOTES = """\
Network: every method runs the same SNN, the one the SEENN-II policy was trained for (the fine-tuned SNN when SEENN-II is in the DAG), with the SEENN-I thresholds calibrated for it.
Energy: additions and multiplications per inference, counted on the test split from the spikes the early-exit engine actually produces, per layer and per timestep run: one AC (0.9 pJ) per input spike per outgoing synapse for spike-driven layers, one MAC (4.6 + 0.9 pJ) per synapse for the encoding layer and non-spiking layers; the stem runs once per sample. The ANN is the same ResNet with ReLU in place of every neuron (dense MACs, T = 1); it reuses the SNN weights, so only its cost is shown, never its accuracy.
Latency: MEASURED wall-clock time on this machine, not deterministic (rerunning changes the figures). ms per sample is paper Eq. 14 (test inference time / number of test samples). Fixed T, SEENN-I and SEENN-II run on the stepwise engine, where samples that exit leave the batch with their neuron states and new samples take their places (continuous batching), so each call computes a full batch. Fixed T is also timed as the multi-step forward; speedup: over the faster fixed-T path at the largest T (the best fixed T), the median of per-round ratios; ideal = T / average timesteps. Precision: engine.precision (fp32 here unless a paper row says otherwise)."""

CONVERSION_NOTES = """\
The conversion branch trains an ANN with the configured ResNet and a QCFS activation in every
activation slot: h(x) = lambda * clip(floor(x * L / lambda + 0.5) / L, 0, 1), L levels, one
trainable lambda per layer, floor with a straight-through gradient (Bu et al., ICLR 2022).
Conversion replaces each QCFS activation by an integrate-and-fire neuron with threshold lambda,
reset by subtraction and membrane starting at lambda / 2; BatchNorm is kept as the affine map of its
running statistics, average pooling only (max-pooling is refused). The analog image enters at every
timestep and the outputs are summed: z_t = O_1 + ... + O_t, so z_t / t approaches the ANN's logits
as t grows. The converted SNN then goes through the same evaluation, AET and SEENN-I code as the
direct SNN, with one difference: SEENN-I divides z_t by conversion.seenn1_temperature instead of
seenn1.temperature (the authors use 8 for converted SNNs). A converted SNN that needs many steps to
converge piles up large summed logits while still wrong, and a temperature of 1 then lets the top
confidence pass every alpha of the sweep (on the default digits config, a temperature of 1 exits
most samples in the first steps at every alpha, with accuracy far below the ANN's; 8 does not).
SEENN-II on the converted SNN uses the same policy code as on the fine-tuned direct SNN; with up to
64 actions the paper's reward 2^-(u-1) is almost nothing past u = 10, so the branch also trains a
powers-of-two action grid and a linear reward, and reports the rule picked on the validation split.
As T grows, the IF rates approach clip(x, 0, lambda) rather than the L-level QCFS value, so the
converted SNN approaches the ANN only if L is not too coarse; its first timesteps are noisy (spikes
fired early are never taken back), which is where SEENN-I has to wait."""

METHOD_NOTES_SEENN2 = """\
Fine-tuning: the direct SNN is trained further with the configured fine-tuning loss (default
'cumulative': mean over t of CE(z_t / t, y)), so that every prefix of the accumulated output predicts
well; fixed T, SEENN-I (recalibrated on validation), SEENN-II and the oracle are then reported for the
fine-tuned checkpoint beside the direct one.
Policy: a ReLU ResNet-8 (conv3x3 stem, one basic block per stage, global pooling, FC to one logit per
action) reads the normalized input and gives pi(u|x) over the actions. The paper's Table 6 policy is
16 / 16-32-64 with a stride-1 stem (the paper configs); the default digits config uses the narrower
policy its seenn2 keys name (widths and stem stride), because Table 6's would cost as much as a whole
timestep of this small SNN; the comparison table gives what the Table 6 policy reaches instead.
Reward: R(u) = reward_base^-(u-1) if the SNN's accumulated prediction is correct at u, else -beta
(the authors'); correctness comes from the saved per-timestep logits of the policy's training split
(the SNN is not rerun). 'expected' maximizes the exact expected reward sum_u pi(u|x) R(u) (authors'
code); 'reinforce' samples u ~ pi and follows (R(u) - b) * grad log pi(u|x) with b the mean reward of
the other samples of the batch (leave-one-out, the paper's reinforcement-learning description).
Optional per-sample weighting (authors' code): r/(1-r) for samples wrong at t = 1, r = accuracy at
t = 1 on that split (its value on each SNN is stated below). SGD with the configured momentum (the
authors' ee_ii_train has none), cosine schedule, seeded sampling and batch order.
Training rules for a long T: besides the paper's rule (every u in 1..T, exponential reward) a branch can
train an action grid of 1, 2, 4, ..., T and a linear reward R(u) = 1 - (u-1)/T; each rule is a stage,
and the one reported is picked on the validation split by SEENN-I's calibration rule (fewest
timesteps within the tolerance of full-T accuracy, else the most accurate).
Test: u = argmax pi(u|x); the sample is correct if the SNN is correct at u; average timesteps = mean u.
One policy per beta gives SEENN-II's tradeoff curve. SEENN-I beside it is chosen on validation only:
its alpha is interpolated on the validation sweep where SEENN-I's average timesteps equal SEENN-II's
validation average timesteps, and that alpha's test accuracy and timesteps are reported (picking
SEENN-I's alpha on the test split would favour it). On a 1,000-image test split one sample is 0.1 point.
The comparison at the main beta puts beside the configured policy the other estimator (same split and
weighting), the configured estimator on the other training-split / weighting choices (same epochs),
and the Table 6 policy when the configured one differs.
Operations: dense MACs of every conv / linear layer, counted with forward hooks on the real models
(spike sparsity ignored, as in the paper's 0.547 % for ResNet-8 vs ResNet-19)."""

CONVERSION_OFF = ("The conversion branch (QCFS ANN training, conversion to an IF SNN, its evaluation, SEENN-I and "
                  "SEENN-II) was switched off by config (conversion.enabled: false): the DAG omitted it, and no table "
                  "or figure of this report holds a converted SNN.")
SEEDS_NOTE = ("Each seed in `seeds` other than `seed` reran the training-to-evaluation stages of every branch "
              "(results/seeds/<s>/) with that seed; every run trains and evaluates on the data split of the main "
              "seed, so only the training randomness varies. std: sample standard deviation (ddof 1). Energy, latency, "
              "the figures and every other page are of the main run (seed {seed}).")

SEEDS_NOTE = ("Each seed in `seeds` other than `seed` reran the training-to-evaluation stages of every branch "
              "(results/seeds/<s>/) with that seed; every run trains and evaluates on the data split of the main "
              "seed, so only the training randomness varies. std: sample standard deviation (ddof 1). Energy, latency, "
              "the figures and every other page are of the main run (seed {seed}).")



def paragraphs(notes: str) -> list[str]:
    """A notes block as paragraphs: a line that opens with a short label and a colon ('Reward:',
    'Energy:') starts a new one; other line breaks are only wrapping."""
    import re

    paras, cur = [], []
    for line in notes.splitlines():
        if cur and re.match(r"^[A-Z][\w' /()-]{0,40}: ", line):
            paras.append(" ".join(cur))
            cur = []
        cur.append(line.strip())
    if cur:
        paras.append(" ".join(cur))
    return paras
