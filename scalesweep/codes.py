"""Integer codes and physical constants shared by the compiled kernels and the Python layer.

The kernels dispatch on small integers (a law's family, the constraint that binds, the solver); everything
outside the kernels names them with strings. This module is the one place where a name and its code are
paired: the kernels import the constants, the Python layer the name tuples, and ``tests/test_codes.py``
checks that the family registry (``laws.FAMILIES``) agrees. It imports nothing, so any module may use it.
"""

# ------------------------------------------------------------------------------------------- families
# A law is (family code, float64 parameter vector); parameter order is the registry's ``param_names``.
CHINCHILLA = 0
KAPLAN = 1
DATA_CONSTRAINED = 2
KAPLAN_STEPS = 3
ALLOCATION_RULE = 4
KAPLAN_SINGLE = 5
FAMILY_NAMES = ("chinchilla", "kaplan", "data_constrained", "kaplan_steps", "allocation_rule", "kaplan_single")

# ------------------------------------------------------------------------------ active constraints
# ``active_constraint`` of a frontier row: which limit the optimum sits on. Codes 0-6, 10 and 11 are set by the
# frontier kernel; 7-9 by the engine when a hardware, data or time limit supplied the binding bound. New codes
# are appended, so a code keeps its value (and a stored table its meaning).
NONE = 0
MIN_PARAMS = 1
MAX_PARAMS = 2
MIN_TOKENS = 3
MAX_TOKENS = 4
MIN_TPP = 5
MAX_TPP = 6
MEMORY = 7  # max params = gpus x GPU memory / bytes per param
UNIQUE_TOKENS = 8  # tokens capped by the unique data available (single-epoch laws)
MAX_DAYS = 9  # a target-loss row needs more compute than the GPUs deliver in max_days
MAX_OVERFIT = 10  # Kaplan's overfitting measure (Eq. 4.3) at its limit
MAX_CONVERGENCE_GAP = 11  # the law's own L(N, D) / L(N, inf) - 1 at its limit
ACTIVE_NAMES = ("none", "min_params", "max_params", "min_tokens", "max_tokens", "min_tokens_per_param",
                "max_tokens_per_param", "memory", "unique_tokens", "max_days", "max_overfit", "max_convergence_gap")
CONSTRAINT_NAMES = ACTIVE_NAMES[MIN_PARAMS:MAX_TPP + 1]  # the six limits on params, tokens and tokens/param

# ``budget_limited_by``: whether a row's budget was cut to what the GPUs deliver in max_days.
BUDGET_LIMITS = ("budget", "max_days")

# ------------------------------------------------------------------------------------------ solvers
SOLVER_AUTO = 0  # closed form where the family has one, else Newton
SOLVER_NEWTON = 1  # Newton from the family's initial guess
SOLVER_NEWTON_MID = 2  # Newton from the middle of the feasible interval (no prior knowledge)
SOLVER_NAMES = ("auto", "newton", "newton-midpoint")

# ---------------------------------------------------------------------------------------- constants
FLOPS_PER_PARAM_TOKEN = 6.0  # training C = 6ND (Kaplan et al. 2020, arXiv:2001.08361, §2.1; Hoffmann et al. 2022 §3)
# forward pass only (Sardana et al. 2024, 'Beyond Chinchilla-Optimal', arXiv:2401.00448, lifetime-FLOPs objective)
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0
PF_DAY = 1e15 * 86400.0  # 8.64e19 FLOP: Kaplan et al. 2020's unit of compute (arXiv:2001.08361, §1.3)

# Kaplan's overfitting measure dL(N, D) = (1 + (N/N_c)^(alpha_N/alpha_D) D_c/D)^alpha_D - 1 (Kaplan et al.
# 2020, 'Scaling Laws for Neural Language Models', arXiv:2001.08361, Eq. 4.3) with the Table 2 constants of the
# joint L(N, D) fit; N non-embedding.
OVERFIT_N_C = 6.4e13
OVERFIT_D_C = 1.8e13
OVERFIT_ALPHA_N = 0.076
OVERFIT_ALPHA_D = 0.103
OVERFIT_RATIO = OVERFIT_ALPHA_N / OVERFIT_ALPHA_D
