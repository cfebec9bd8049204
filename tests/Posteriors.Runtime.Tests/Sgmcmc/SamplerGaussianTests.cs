using Posteriors.Ensembles;
using Posteriors.Sgmcmc;
using Posteriors.Traces;
using Posteriors.Trees;
using static TorchSharp.torch;

namespace Posteriors.Tests.Sgmcmc;

/// <summary>docs/ALGORITHMS.md §7: every sampler recovers a correlated 2-D Gaussian, with K chains batched in one tensor.</summary>
public class SamplerGaussianTests
{
    private const int Chains = 2_000;
    private const int Steps = 3_500;
    private const int BurnIn = 2_500;

    [TestCaseSource(typeof(SamplerCases), nameof(SamplerCases.Names))]
    public void RecoversMeanCovarianceAndKl(string name)
    {
        var target = new GaussianTarget(seed: 42);
        var sampler = SamplerCases.Build(name, target.LogPosterior);
        // Start far away, as in the reference test: θ ~ N(0, 100 I) independently for every chain.
        var init = randn(new long[] { Chains, 2 }, dtype: ScalarType.Float64, generator: new Generator(7)) * 10.0;
        var state = sampler.Init(ParameterTree.From(("theta", init)), seed: 1);
        using var moments = new RunningMoments(fullCovariance: true);
        for (var step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            state = sampler.Update(state, inplace: true);
            if (state.Step > BurnIn) moments.AddRows(ParallelChains.Rows(state.Params));
        }

        // Monte Carlo error: pooling draws over time within a chain can only lower the variance of an average of
        // identically distributed draws, so the error is at most that of one draw per chain, i.e. K = 2,000 iid draws:
        // SE(mean_i) ≤ sqrt(Σii / K), SE(cov_ij) ≤ sqrt((Σii Σjj + Σij²) / K). Allow 5 SE, and never more than 0.1.
        var cov = target.Covariance;
        var diag = cov.diagonal();
        var seMean = (diag / Chains).sqrt();
        var seCov = ((diag.outer(diag) + cov.square()) / Chains).sqrt();
        var tolMean = (5 * seMean).clamp(max: 0.1);
        var tolCov = (5 * seCov).clamp(max: 0.1);
        var mean = moments.Mean;
        var sampleCov = moments.Covariance;
        TestContext.Out.WriteLine($"{name}: |Δmean| {(mean - target.Mean).abs().Str()} tol {tolMean.Str()}; |Δcov| {(sampleCov - cov).abs().Str()} tol {tolCov.Str()}");
        Assert.That(((mean - target.Mean).abs() <= tolMean).all().item<bool>(), Is.True,
            $"{name}: mean {mean.Str()} vs {target.Mean.Str()} (tolerance {tolMean.Str()})");
        Assert.That(((sampleCov - cov).abs() <= tolCov).all().item<bool>(), Is.True,
            $"{name}: covariance {sampleCov.Str()} vs {cov.Str()} (tolerance {tolCov.Str()})");

        var klInit = target.Kl(zeros(2, dtype: ScalarType.Float64), 100 * eye(2, dtype: ScalarType.Float64));
        var kl = target.Kl(mean, sampleCov);
        Assert.That(kl, Is.LessThan(0.01 * klInit), $"{name}: KL {kl} vs initial {klInit}");
    }
}
