using Posteriors;
using Posteriors.Models;
using Posteriors.Native;
using Posteriors.Optim;
using Posteriors.Trees;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Cli.Commands;

/// <summary>MAP estimation of a Bayesian linear regression on synthetic data (the `regression` subcommand).</summary>
public static class RegressionDemo
{
    /// <summary>Runs the demo; 0 when the estimate is within 0.1 of the truth.</summary>
    public static int Run()
    {
        // MAP estimation of a Bayesian linear regression on synthetic data with AdamW,
        // through the same Init/Update contract every algorithm uses.
        const int n = 2000, features = 8, batchSize = 100, epochs = 20;
        var (x, y, truth) = Synthetic.LinearRegression(n, features, noise: 0.5, seed: 1);

        LogPosterior<(Tensor X, Tensor Y)> logPosterior = (p, batch) =>
        {
            var mean = Checked.MatMul(batch.X, p["weight"]).squeeze(1) + p["bias"];
            var logLik = distributions.Normal(mean, tensor(0.5f)).log_prob(batch.Y).mean();
            var logPrior = DiagNormal.LogProb(p, mean: 0, sd: 1);
            return logLik + logPrior / n;
        };

        var init = ParameterTree.From(("weight", zeros(features, 1)), ("bias", zeros(1)));
        var transform = TorchOptim.Build(logPosterior, ps => optim.AdamW(ps, lr: 0.05));
        var state = transform.Init(init);
        var generator = new Generator(7);

        AnsiConsole.MarkupLine($"[bold]Posteriors[/] — MAP of a Bayesian linear regression ({n} points, {features} features), AdamW, {epochs} epochs");
        AnsiConsole.Progress().Start(ctx =>
        {
            var task = ctx.AddTask("training", maxValue: epochs);
            for (var epoch = 0; epoch < epochs; epoch++)
            {
                using var scope = NewDisposeScope();
                var order = randperm(n, generator: generator);
                for (var start = 0; start < n; start += batchSize)
                {
                    var idx = order.narrow(0, start, batchSize);
                    state = transform.Update(state, (x.index_select(0, idx), y.index_select(0, idx)), inplace: true);
                }
                task.Increment(1);
                task.Description = $"epoch {epoch + 1}/{epochs}  log π = {state.LogPosterior.item<float>():F4}";
            }
        });

        var table = new Table().AddColumns("parameter", "MAP", "truth");
        var estimate = state.Params["weight"].squeeze(1);
        for (var i = 0; i < features; i++)
            table.AddRow(Markup.Escape($"weight[{i}]"), $"{estimate[i].item<float>():F3}", $"{truth["weight"][i, 0].item<float>():F3}");
        table.AddRow("bias", $"{state.Params["bias"][0].item<float>():F3}", $"{truth["bias"][0].item<float>():F3}");
        AnsiConsole.Write(table);
        var error = (state.Params["weight"] - truth["weight"]).abs().max().item<float>();
        AnsiConsole.MarkupLine($"max |MAP − truth| over weights: {error:F4}");
        return error < 0.1 ? 0 : 1;
    }
}
