"""A moetrain MoE model for Hugging Face transformers (trust_remote_code=True), as
tools/export_hf.py writes it: GPT-2 whose every moe_every-th block (counting from 1) has a MoE
layer instead of its MLP, at moetrain's evaluation settings. Per group of moe_group_sequences
sequences each expert takes ceil(moe_eval_capacity_factor * k * tokens / E) slots (none dropped
when moe_dropless), claimed in token order, first choices first; a token over capacity gets no
expert output for that choice. switch: the top expert, weighted by its probability; gshard: the
top two, weights renormalised; hash: a fixed table of token ids (stored as mlp.table), weight 1,
no capacity."""
import math

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import NewGELUActivation


class MoetrainConfig(GPT2Config):
    model_type = "moetrain"

    def __init__(self, moe_experts=8, moe_every=2, moe_gate="switch",
                 moe_eval_capacity_factor=2.0, moe_group_sequences=1, moe_dropless=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.moe_experts, self.moe_every, self.moe_gate = moe_experts, moe_every, moe_gate
        self.moe_eval_capacity_factor = moe_eval_capacity_factor
        self.moe_group_sequences, self.moe_dropless = moe_group_sequences, moe_dropless


class MoeMlp(nn.Module):
    def __init__(self, config, tokens):
        super().__init__()
        E, d, f = config.moe_experts, config.n_embd, config.n_inner
        self.config, self.tokens = config, tokens  # tokens: the model's input ids, for hash
        self.fc1 = nn.ParameterDict({"weight": nn.Parameter(torch.empty(E, d, f)),
                                     "bias": nn.Parameter(torch.empty(E, f))})
        self.fc2 = nn.ParameterDict({"weight": nn.Parameter(torch.empty(E, f, d)),
                                     "bias": nn.Parameter(torch.empty(E, d))})
        if config.moe_gate == "hash":
            self.register_buffer("table", torch.zeros(config.vocab_size, dtype=torch.long))
        else:
            self.gate = nn.ParameterDict({"weight": nn.Parameter(torch.empty(d, E))})  # x @ w
        self.act = NewGELUActivation()

    def route(self, x):
        """choices [N, k], weights [N, k] (0 where capacity dropped the choice)."""
        c = self.config
        if c.moe_gate == "hash":
            choice = self.table[self.tokens[0].reshape(-1)].unsqueeze(1)
            return choice, torch.ones(choice.shape, dtype=x.dtype)
        probs = torch.softmax(x @ self.gate["weight"], dim=-1)
        k = 2 if c.moe_gate == "gshard" else 1
        weight, choice = probs.topk(k, dim=-1)
        if k == 2:
            weight = weight / weight.sum(-1, keepdim=True)
        if c.moe_dropless:
            return choice, weight
        group = c.moe_group_sequences * self.tokens[0].shape[1]
        cap = math.ceil(c.moe_eval_capacity_factor * k * group / c.moe_experts)
        keep = torch.zeros_like(choice, dtype=torch.bool)
        for g in range(0, x.shape[0], group):
            used = torch.zeros(c.moe_experts, dtype=torch.long)
            for j in range(k):  # slots in token order, first choices first
                onehot = nn.functional.one_hot(choice[g:g + group, j], c.moe_experts)
                rank = used + onehot.cumsum(0) - onehot  # slots taken before this token
                keep[g:g + group, j] = (rank * onehot).sum(-1) < cap
                used += onehot.sum(0)
        return choice, weight * keep

    def forward(self, hidden):
        B, T, d = hidden.shape
        x = hidden.reshape(B * T, d)
        choice, weight = self.route(x)
        y = torch.zeros_like(x)
        for e in range(self.config.moe_experts):
            for j in range(choice.shape[1]):
                idx = torch.nonzero(choice[:, j] == e).squeeze(1)
                if idx.numel():
                    h = self.act(x[idx] @ self.fc1["weight"][e] + self.fc1["bias"][e])
                    out = h @ self.fc2["weight"][e] + self.fc2["bias"][e]
                    y[idx] += weight[idx, j:j + 1] * out
        return y.view(B, T, d)


class MoetrainForCausalLM(GPT2LMHeadModel):
    config_class = MoetrainConfig

    def __init__(self, config):
        super().__init__(config)
        self._tokens = [None]  # shared with the MoE layers: the ids of the current forward
        for i, block in enumerate(self.transformer.h):
            if i % config.moe_every == config.moe_every - 1:
                block.mlp = MoeMlp(config, self._tokens)
        self.post_init()

    def forward(self, input_ids=None, **kwargs):
        self._tokens[0] = input_ids
        return super().forward(input_ids=input_ids, **kwargs)
