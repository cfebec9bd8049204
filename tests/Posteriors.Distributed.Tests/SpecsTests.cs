using Posteriors.Distributed.Chains;
using Posteriors.Distributed.Models;

namespace Posteriors.Distributed.Tests;

public sealed class SpecsTests
{
    [Test]
    public void A_hyperparameter_the_sampler_does_not_have_is_refused_naming_it_and_its_value()
    {
        var e = Assert.Throws<ArgumentException>(() => new SamplerSpec(0.1, Alpha: 0.5, Sigma: 1, Temperature: 1, Kind: SamplerKind.Sgld).Validated())!;
        Assert.That(e.ParamName, Is.EqualTo("Alpha"));
        Assert.That(e.Message, Does.Contain("Sgld has no Alpha").And.Contain("0.5"));

        e = Assert.Throws<ArgumentException>(() => (SamplerSpec.Baoa(0.1, 0.5, 1, 1) with { Beta = 0.2 }).Validated())!;
        Assert.That(e.Message, Does.Contain("Baoa has no Beta").And.Contain("0.2"));
        e = Assert.Throws<ArgumentException>(() => (SamplerSpec.Sghmc(0.1, 0.5, 1, 1) with { Xi = 0.3 }).Validated())!;
        Assert.That(e.ParamName, Is.EqualTo("Xi"));
        e = Assert.Throws<ArgumentException>(() => (SamplerSpec.Sglrw(0.1, 1) with { Sigma = 2 }).Validated())!;
        Assert.That(e.ParamName, Is.EqualTo("Sigma"));

        // Every factory's spec is valid for its sampler, and a member spec carrying a bad sampler is refused as a whole.
        Assert.DoesNotThrow(() =>
        {
            SamplerSpec.Sgld(0.1, 1, beta: 0.1).Validated();
            SamplerSpec.Sgnht(0.1, 0.5, 1, 1, xi: 0.2).Validated();
            SamplerSpec.Baoa(0.1, 0.5, 1, 1).Validated();
            SamplerSpec.Sglrw(0.1, 1).Validated();
        });
        var bad = new ChainSpec("run", 0, ModelSpec.Of(SyntheticClassifier.Name), new SamplerSpec(0.1, 0.5, 1, 1, Kind: SamplerKind.Sglrw), 0, 10, 5);
        Assert.That(Assert.Throws<ArgumentException>(() => bad.Validated())!.ParamName, Is.EqualTo("Alpha"));
    }
}
