"""Training, evaluation and export of text classifiers (data_prep's prepared dataset -> Contract 2).

Shared: config (typed settings), run_dir (the run folder's layout), family (the seam and the registry of
families), train, evaluate, export, pipeline, schedule, strategy, baseline, cli. Each model family is a
package beside them: lstm/, bert/.
"""
