using Posteriors.Generators;

namespace Posteriors.Generators.Tests;

public class GeneratorSmokeTests
{
    [Test]
    public void GeneratorIsAnIncrementalGenerator() =>
        Assert.That(new ModelGenerator(), Is.InstanceOf<Microsoft.CodeAnalysis.IIncrementalGenerator>());
}
