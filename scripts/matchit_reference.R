# Reference results from R's MatchIt on the Lalonde data, for tests/test_matchit_reference.py.
#
# Usage: Rscript scripts/matchit_reference.R OUT_DIR
# Needs: r-base-core r-cran-matchit r-cran-sandwich r-cran-lmtest (Debian packages).
# Writes small CSVs: lalonde.csv (the data), one <variant>.csv per matching variant
# (id, weight, subclass, distance), summary.csv (effect and standard errors per variant),
# glm.csv (propensity coefficients) and versions.csv. The Python tests compare jdl to
# these files; R is not needed at test time.

suppressPackageStartupMessages({
  library(MatchIt)
  library(sandwich)
  library(lmtest)
})

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[[1]] else "tests/reference/matchit"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

data("lalonde", package = "MatchIt")
lalonde$id <- rownames(lalonde)
lalonde$race <- as.character(lalonde$race)
write.csv(
  lalonde[, c("id", "treat", "age", "educ", "race", "married", "nodegree", "re74", "re75", "re78")],
  file.path(out, "lalonde.csv"), row.names = FALSE
)
lalonde$race <- factor(lalonde$race)

# MatchIt 4.5.1 (the Debian package) has two known defects in its fast nearest-neighbour
# routine nn_matchC_vec, both fixed upstream later: it truncates |distance differences| to
# integers (so the nearer side and the caliper are wrong: kosukeimai/MatchIt#163), and with
# replace = TRUE and ratio > 1 it matches a treated unit to the same control repeatedly
# (kosukeimai/MatchIt#159). Route nearest-neighbour matching through MatchIt's own general
# routine nn_matchC instead (the one 4.5.1 itself uses for Mahalanobis distances), which has
# neither defect. Ties in distance go to the control that comes first in the data.
general_nn_routine <- function(treat, ord, ratio, discarded, reuse.max, distance, distance_mat,
                               ex, caliper.dist, caliper.covs, caliper.covs.mat, mahcovs,
                               antiexactcovs, unit.id, verbose) {
  MatchIt:::nn_matchC(treat, ord, ratio, discarded, reuse.max, distance, distance_mat, ex,
                      caliper.dist, caliper.covs, caliper.covs.mat, mahcovs, antiexactcovs,
                      unit.id, verbose)
}
if (packageVersion("MatchIt") < "4.5.4") {
  assignInNamespace("nn_matchC_dispatch", general_nn_routine, ns = "MatchIt")
}

f <- treat ~ age + educ + race + married + nodegree + re74 + re75

write_num <- function(x) ifelse(is.na(x), NA_character_, sprintf("%.17g", x))

variants <- list(
  nearest_1to1 = list(method = "nearest"),
  nearest_replace = list(method = "nearest", replace = TRUE),
  nearest_caliper = list(method = "nearest", link = "linear.logit", caliper = 0.2),
  nearest_3to1_replace = list(method = "nearest", ratio = 3, replace = TRUE),
  nearest_exact_married = list(method = "nearest", exact = ~married),
  nearest_smallest = list(method = "nearest", m.order = "smallest"),
  nearest_atc = list(method = "nearest", estimand = "ATC"),
  nearest_2to1 = list(method = "nearest", ratio = 2),
  nearest_discard_both = list(method = "nearest", discard = "both"),
  nearest_mahalanobis_caliper = list(method = "nearest", link = "linear.logit", caliper = 0.2,
                                     mahvars = ~age + educ + re74 + re75),
  nearest_covariate_caliper = list(method = "nearest", caliper = c(0.25, age = 5),
                                   std.caliper = c(TRUE, FALSE)),
  subclass_att = list(method = "subclass"),
  subclass_ate = list(method = "subclass", estimand = "ATE", subclass = 5),
  exact = list(method = "exact", formula = treat ~ race + married + nodegree),
  cem = list(method = "cem"),
  cem_ate = list(method = "cem", estimand = "ATE")
)

robust_se <- function(fit, type) sqrt(diag(vcovHC(fit, type = type)))[["treat"]]

summary_rows <- list()
for (name in names(variants)) {
  opts <- variants[[name]]
  formula <- if (is.null(opts$formula)) f else opts$formula
  opts$formula <- NULL
  m <- suppressWarnings(do.call(matchit, c(list(formula = formula, data = lalonde), opts)))
  subclass <- if (is.null(m$subclass)) rep(NA_integer_, nrow(lalonde)) else as.integer(m$subclass)
  distance <- if (is.null(m$distance)) rep(NA_real_, nrow(lalonde)) else m$distance
  write.csv(
    data.frame(id = lalonde$id, weight = write_num(m$weights), subclass = subclass,
               distance = write_num(distance)),
    file.path(out, paste0(name, ".csv")), row.names = FALSE, quote = FALSE, na = ""
  )
  replace <- isTRUE(opts$replace)
  stratified <- opts$method %in% c("subclass", "exact", "cem")
  if (replace) {
    md <- get_matches(m, data = lalonde, id = "unit_id")
    fit <- lm(re78 ~ treat, data = md, weights = weights)
    se <- sqrt(diag(vcovCL(fit, cluster = ~subclass + unit_id)))[["treat"]]
    se_type <- "two-way cluster (subclass, unit) on get_matches()"
  } else {
    md <- match.data(m, data = lalonde)
    fit <- lm(re78 ~ treat, data = md, weights = weights)
    se <- sqrt(diag(vcovCL(fit, cluster = ~subclass)))[["treat"]]
    se_type <- "cluster by subclass on match.data()"
  }
  summary_rows[[name]] <- data.frame(
    variant = name,
    estimand = if (is.null(opts$estimand)) "ATT" else opts$estimand,
    effect = write_num(coef(fit)[["treat"]]),
    se_cluster = write_num(se),
    se_cluster_type = se_type,
    se_hc1 = write_num(robust_se(fit, "HC1")),
    se_hc3 = write_num(robust_se(fit, "HC3")),
    n_treated_matched = sum(m$weights[lalonde$treat == 1] > 0),
    n_control_matched = sum(m$weights[lalonde$treat == 0] > 0),
    stratified = stratified
  )
}
write.csv(do.call(rbind, summary_rows), file.path(out, "summary.csv"), row.names = FALSE)

ps <- glm(f, data = lalonde, family = binomial())
write.csv(data.frame(term = names(coef(ps)), estimate = write_num(coef(ps))),
          file.path(out, "glm.csv"), row.names = FALSE, quote = FALSE)
write.csv(data.frame(
  package = c("R", "MatchIt", "sandwich", "nearest-neighbour routine"),
  version = c(as.character(getRversion()), as.character(packageVersion("MatchIt")),
              as.character(packageVersion("sandwich")),
              if (packageVersion("MatchIt") < "4.5.4") "nn_matchC (nn_matchC_vec bypassed: MatchIt#159, #163)"
              else "MatchIt default")
), file.path(out, "versions.csv"), row.names = FALSE)
