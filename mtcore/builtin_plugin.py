"""mtcore's own heads, samplers, loss strategies, metrics and writers.

Registered through the same hooks as any third-party plugin (entry point ``mtcore`` in the
``mtcore`` group). Everything is a lazy reference: nothing here imports torch.
"""

from __future__ import annotations

from mtcore.hookspecs import hookimpl

_CLS = ("text_classification", "pair_classification")


@hookimpl
def mt_register_heads(register):
    heads = "mtcore.model.heads"
    register("classification", f"{heads}.classification:ClassificationHead", "pooled (cls/mean/max/pooler/spans) -> dropout -> linear", kinds=_CLS)
    register("mlp", f"{heads}.classification:MLPHead", "the seed's N-linear-layers head: pooled -> [linear, act, (norm,) dropout] x N -> linear", kinds=_CLS)
    register("regression", f"{heads}.regression:RegressionHead", "pooled -> linear -> one value, MSE loss", kinds=("regression",))
    register("multi_label", f"{heads}.multi_label:MultiLabelHead", "pooled -> linear -> one logit per label, BCE loss", kinds=("multi_label",))
    register("multiple_choice", f"{heads}.multiple_choice:MultipleChoiceHead", "one scorer over N (context, choice) encodings, cross-entropy over choices", kinds=("multiple_choice",))
    register("token_classification", f"{heads}.token_classification:TokenClassificationHead", "per-token linear, cross-entropy ignoring -100", kinds=("token_classification",))
    register("extractive_qa", f"{heads}.extractive_qa:ExtractiveQAHead", "per-token start and end scores, the best span is the answer", kinds=("extractive_qa",))
    register("masked_lm", f"{heads}.masked_lm:MaskedLMHead", "BERT's prediction head at the masked tokens, decoder tied to the word embeddings", kinds=("masked_lm",))


@hookimpl
def mt_register_samplers(register):
    s = "mtcore.sampling.samplers"
    register("proportional", f"{s}:ProportionalSampler", "p_i = n_i / sum(n)")
    register("temperature", f"{s}:TemperatureSampler", "p_i ~ min(n_i, cap)^(1/T)")
    register("uniform", f"{s}:UniformSampler", "p_i = 1 / number of tasks")
    register("round_robin", f"{s}:RoundRobinSampler", "tasks in turn")
    register("annealed", f"{s}:AnnealedSampler", "p_i ~ n_i^alpha, alpha = 1 - 0.8 * epoch / (E - 1) (BERT and PALs)")
    register("fixed", f"{s}:FixedWeightsSampler", "p_i ~ weights given in the config")


@hookimpl
def mt_register_loss_strategies(register):
    s = "mtcore.train.losses"
    register("single", f"{s}:SingleTaskLoss", "one task per step, its loss as is")
    register("sum", f"{s}:SumLoss", "one batch of every task per step, losses summed")
    register("weighted", f"{s}:WeightedLoss", "static per-task weights")
    register("uncertainty", "mtcore.train.loss_balancers:UncertaintyLoss", "learned per-task log-variances (Kendall et al.)")
    register("pcgrad", f"{s}:PCGradLoss", "per-task gradient projection (Yu et al.)")
    register("rlw", "mtcore.train.loss_balancers:RandomWeightLoss", "random per-task weights drawn every step (Lin et al.)")
    register("mgda", "mtcore.train.gradient_balancers:MGDALoss", "minimum-norm combination of the task gradients (Sener & Koltun)")
    register("cagrad", "mtcore.train.gradient_balancers:CAGradLoss", "conflict-averse update near the mean gradient (Liu et al.)")
    register("gradnorm", "mtcore.train.gradient_balancers:GradNormLoss", "learned weights balancing the tasks' gradient norms (Chen et al.)")
    register("imtl", "mtcore.train.gradient_surgery:IMTLGLoss", "IMTL-G: equal projections onto every task's unit gradient; loss_scale: true adds IMTL-L (Liu et al. 2021)")
    register("aligned_mtl", "mtcore.train.gradient_surgery:AlignedMTLLoss", "task gradients aligned to orthogonal ones of equal norm (Senushkin et al.)")
    register("gradvac", "mtcore.train.gradient_surgery:GradVacLoss", "gradient vaccine: PCGrad towards EMA target cosines (Wang et al.)")
    register("nash_mtl", "mtcore.train.gradient_surgery:NashMTLLoss", "Nash bargaining solution over the task gradients (Navon et al. 2022)")
    register("db_mtl", "mtcore.train.db_mtl:DBMTLLoss", "log-losses, gradient averages raised to the largest norm (Lin et al. 2023)")
    register("upgrad", "mtcore.train.fair_combiners:UPGradLoss", "each task's gradient projected onto the cone no task conflicts with, summed (Quinton & Rey 2024)")
    register("fairgrad", "mtcore.train.fair_combiners:FairGradLoss", "alpha-fair allocation of the tasks' improvements (Ban & Ji 2024)")
    register("gls", "mtcore.train.scalarizations:GLSLoss", "K times the geometric mean of the task losses (Chennupati et al. 2019)")
    register("stch", "mtcore.train.scalarizations:STCHLoss", "smooth Tchebycheff: a smooth maximum of the log-losses over their nadir (Lin et al. 2024)")
    register("moco", "mtcore.train.moco:MoCoLoss", "tracked task gradients, MGDA weights moved one projected step a time (Fernando et al. 2023)")
    register("excess_mtl", "mtcore.train.excess_mtl:ExcessMTLLoss", "weights grown for the tasks with the most excess risk left, from AdaGrad-scaled gradients (He et al. 2024)")
    register("dwa", "mtcore.train.loss_balancers:DynamicWeightAverageLoss", "weights from each task's loss descent rate (Liu et al.)")
    register("famo", "mtcore.train.famo:FAMOLoss", "balanced loss decrease with O(1) cost, task logits updated after each step (Liu et al. 2023)")


@hookimpl
def mt_register_metrics(register):
    m = "mtcore.train.metrics"
    labels = ("text_classification", "pair_classification", "multiple_choice", "token_classification", "multi_label")
    single = ("text_classification", "pair_classification", "multiple_choice", "token_classification")
    for name, doc, kinds in [
        ("accuracy", "share of exact predictions", labels),
        ("f1_macro", "F1 averaged over classes", labels),
        ("f1_micro", "F1 over all decisions", labels),
        ("f1_weighted", "F1 averaged over classes weighted by their share (RuSentiment's published figure)", labels),
        ("f1_accuracy_mean", "mean of macro F1 and accuracy (CB's and RCB's official score)", single),
        ("f1_binary", "F1 of the positive class (id 1; two classes)", ("text_classification", "pair_classification")),
        ("mcc", "Matthews correlation", single),
        ("pearson", "Pearson correlation", ("regression",)),
        ("spearman", "Spearman correlation", ("regression",)),
        ("mse", "mean squared error (lower is better)", ("regression",)),
        ("exact_match", "share of examples with every label right (multi-label)", labels),
        ("token_accuracy", "share of labelled tokens predicted right", ("token_classification",)),
        ("f1_entity", "entity-level F1 of B-/I-/O tags (CoNLL's conlleval)", ("token_classification",)),
    ]:
        register(name, f"{m}:{name}", doc, kinds=kinds, **({"lower_is_better": True} if name == "mse" else {}))
    for name, doc in [("squad_f1", "token-overlap F1 with the best gold answer (SQuAD v1.1's script; v2.0's with no_answer)"),
                      ("squad_em", "share of answers equal to a gold answer after SQuAD's normalisation"),
                      ("squad_f1_has_answer", "squad_f1 over the questions that have an answer (SQuAD 2.0's HasAns)"),
                      ("squad_f1_no_answer", "share of unanswerable questions predicted unanswered (SQuAD 2.0's NoAns)"),
                      ("squad_best_f1", "squad_f1 at the best null_threshold (SQuAD 2.0's best_f1)"),
                      ("squad_best_em", "squad_em at the best null_threshold (SQuAD 2.0's best_exact)"),
                      ("squad_best_f1_threshold", "the null_threshold of squad_best_f1 (SQuAD 2.0's best_f1_thresh)")]:
        register(name, f"mtcore.train.qa_metrics:{name}", doc, kinds=("extractive_qa",))
    register("mlm_accuracy", "mtcore.train.mlm_metrics:mlm_accuracy", "share of masked tokens predicted right", kinds=("masked_lm",))
    register("perplexity", "mtcore.train.mlm_metrics:perplexity", "exp of the mean cross-entropy at the masked tokens (lower is better)", kinds=("masked_lm",),
             lower_is_better=True)


@hookimpl
def mt_register_writers(register):
    w = "mtcore.predict.writers"
    register("jsonl", f"{w}:write_jsonl", "one JSON object per row: idx, label, probabilities")
    register("csv", f"{w}:write_csv", "idx,label and one probability column per class")
    register("conll", f"{w}:write_conll", "a token task's words and predicted tags, one per line (CoNLL's layout)")
