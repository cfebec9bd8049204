using System.Globalization;
using Posteriors;
using Posteriors.Diagnostics;
using Posteriors.Ensembles;
using Posteriors.Modeling;
using Posteriors.Models.Hierarchical;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using static TorchSharp.torch;

// Eight schools in its centred and non-centred forms, each sampled by 8 parallel BAOA chains (started from prior draws)
// on the full batch at T = 1/N (the posterior), against the posterior means by quadrature.
// Arguments: [steps = 10000] [lr = 0.5] [alpha = 0.3].
var steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
var lr = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 0.5;
var alpha = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 0.3;
const int chains = 8;
var batch = EightSchools.Batch();
var exact = EightSchools.PosteriorMeansByQuadrature();
Console.WriteLine($"Eight schools; posterior means by quadrature: μ {exact.Mu:F2}, τ {exact.Tau:F2}, " +
                  $"θ {string.Join(" ", exact.Theta.Select(t => t.ToString("F2", CultureInfo.InvariantCulture)))}");

Run("non-centred", new EightSchoolsNonCentred { DatasetSize = 8 }, t => t["Mu"] + t["Tau"] * t["Eta"]);
Run("centred", new EightSchoolsCentred { DatasetSize = 8 }, t => t["Theta"]);

void Run(string name, IModel<(Tensor, Tensor)> model, Func<ParameterTree, Tensor> theta)
{
    var sampler = Baoa.Build(ParallelChains.Sum<(Tensor, Tensor)>(model.LogPosterior), lr: lr, alpha: alpha,
        temperature: 1.0 / 8, momenta: InitialMomenta.Zero);
    var state = sampler.Init(ParallelChains.Initialise(chains, k => model.SamplePrior(new Generator((ulong)(100 + k)))), seed: 7);
    var burnIn = steps / 4;
    var mu = new List<Tensor>();
    var tau = new List<Tensor>();
    var thetas = new List<Tensor>();
    for (var step = 0; step < steps; step++)
    {
        using var scope = NewDisposeScope();
        state = sampler.Update(state, batch, inplace: true);
        if (step < burnIn || step % 10 != 0) continue;
        var constrained = model.Constrain(state.Params);
        mu.Add(constrained["Mu"].squeeze(1).detach().clone().MoveToOuterDisposeScope());
        tau.Add(constrained["Tau"].squeeze(1).detach().clone().MoveToOuterDisposeScope());
        thetas.Add(theta(constrained).detach().clone().MoveToOuterDisposeScope());
    }
    var muDraws = stack(mu.ToArray(), 1);          // [chains, draws]
    var tauDraws = stack(tau.ToArray(), 1);
    var thetaDraws = stack(thetas.ToArray(), 1);   // [chains, draws, 8]
    Console.WriteLine();
    Console.WriteLine($"{name}: {chains} chains × {steps} BAOA steps (lr {lr}, α {alpha}, burn-in {burnIn}, every 10th kept)");
    Console.WriteLine("            mean    median  5%      95%     exact   R-hat  ESS");
    Row("μ", muDraws, exact.Mu);
    Row("τ", tauDraws, exact.Tau);
    for (var j = 0; j < 8; j++) Row($"θ{j + 1}", thetaDraws[.., .., j], exact.Theta[j]);
    var smallTau = (tauDraws < 1).to_type(ScalarType.Float64).mean().item<double>();
    var largest = tauDraws.max(1).values;
    Console.WriteLine($"  share of draws with τ < 1: {smallTau:P1} (the funnel's neck); largest τ per chain: " +
                      string.Join(" ", Enumerable.Range(0, chains).Select(k => largest[k].item<double>().ToString("G3", CultureInfo.InvariantCulture))));
}

static void Row(string label, Tensor draws, double exact)
{
    var flat = draws.reshape(-1);
    var q = flat.quantile(tensor(new[] { 0.05, 0.5, 0.95 }, dtype: flat.dtype));
    var chains = Convergence.Chains(draws);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  {label,-8}{flat.mean().item<double>(),8:G3}{q[1].item<double>(),8:F2}{q[0].item<double>(),8:F2}{q[2].item<double>(),8:F2}{exact,8:F2}" +
        $"{Convergence.SplitRHat(chains),7:F3}{Convergence.EffectiveSampleSize(chains),7:F0}"));
}
