using Posteriors.Continual;
using Posteriors.Ekf;
using Posteriors.Laplace;
using Posteriors.Optim;
using Posteriors.Serialization;
using Posteriors.Sgmcmc;
using Posteriors.Trees;
using Posteriors.Vi;
using static TorchSharp.torch;

namespace Posteriors.Tests.Serialization;

/// <summary>Saved states of every kind keep loading: the committed fixtures, written by earlier versions, against the recipes run now.</summary>
public class StateFixtureTests
{
    private static readonly string Fixtures = Path.Combine(TestContext.CurrentContext.TestDirectory, "Serialization", "Fixtures");

    /// <summary>
    /// Kind → (load a file with the current library, the recipe's state now for the loaded record), both as the records the
    /// current library writes. The SGMCMC recipes run with the noise generator the loaded record names.
    /// </summary>
    private static readonly Dictionary<string, (Func<string, StateRecord> Load, Func<StateRecord, StateRecord> Expected)> Kinds = new()
    {
        [SgldState.Kind] = Sampler(StateFixtures.Sgld),
        [SghmcState.Kind] = Sampler(StateFixtures.Sghmc),
        [SgnhtState.Kind] = Sampler(StateFixtures.Sgnht),
        [BaoaState.Kind] = Sampler(StateFixtures.Baoa),
        [SglrwState.Kind] = Sampler(StateFixtures.Sglrw),
        [DiagLaplaceState.Kind] = Entry(StateFixtures.DiagLaplace),
        [DenseLaplaceState.Kind] = Entry(StateFixtures.DenseLaplace),
        [KfacLaplaceState.Kind] = Entry(StateFixtures.KfacLaplace),
        [DiagEkfState.Kind] = Entry(StateFixtures.DiagEkf),
        [DenseEkfState.Kind] = Entry(StateFixtures.DenseEkf),
        [DiagViState.Kind] = Entry(StateFixtures.DiagVi),
        [DenseViState.Kind] = Entry(StateFixtures.DenseVi),
        [TorchOptimState.Kind] = Entry(StateFixtures.TorchOptim),
        [MapState.Kind] = Entry(StateFixtures.Map),
        [LaplacePrior.Kind] = Entry(StateFixtures.LaplacePrior),
    };

    private static (Func<string, StateRecord>, Func<StateRecord, StateRecord>) Entry<TState>(Func<TState> recipe) where TState : IPersistentState<TState> =>
        (path => Record(StateFile.Load<TState>(path)), _ => Record(recipe()));

    private static (Func<string, StateRecord>, Func<StateRecord, StateRecord>) Sampler<TState>(Func<NoiseStream, TState> recipe)
        where TState : SgmcmcState, IPersistentState<TState> =>
        (path => Record(StateFile.Load<TState>(path)), loaded => Record(recipe((NoiseStream)loaded.GetLong("noise_stream"))));

    private static StateRecord Record<TState>(TState state) where TState : IPersistentState<TState>
    {
        var record = new StateRecord { Kind = TState.Kind, KindVersion = TState.KindVersion };
        state.WriteTo(record);
        return record;
    }

    public static IEnumerable<TestCaseData> FixtureFiles() =>
        Directory.GetFiles(Fixtures, "*.state").Order(StringComparer.Ordinal).Select(f => new TestCaseData(Path.GetFileName(f)).SetName($"Loads {Path.GetFileName(f)}"));

    [TestCaseSource(nameof(FixtureFiles))]
    public void FixtureLoadsWithTheRecipesValues(string file)
    {
        var kind = file[..file.IndexOf(".v", StringComparison.Ordinal)];
        Assert.That(Kinds.ContainsKey(kind), Is.True, $"No recipe for kind '{kind}'.");
        var (load, expected) = Kinds[kind];
        var loaded = load(Path.Combine(Fixtures, file));
        AssertSameFields(loaded, expected(loaded));
    }

    [Test]
    public void ASamplerFileOfVersion1ResumesBitIdenticallyWithTheGeneratorThatWroteIt()
    {
        using var loaded = StateFile.Load<SghmcState>(Path.Combine(Fixtures, "Sghmc.v1.state"));
        Assert.That(loaded.NoiseStream, Is.EqualTo(NoiseStream.PhiloxBoxMuller));
        // A sampler whose new states take the default generator: the loaded state keeps its own.
        var sampler = StateFixtures.SghmcTransform();
        Assert.That(sampler.NoiseStream, Is.EqualTo(NoiseStream.PhiloxXoshiro));
        using var resumed = sampler.Update(loaded, 3);
        using var straight = StateFixtures.Sghmc(NoiseStream.PhiloxBoxMuller, steps: 3);
        for (var i = 0; i < straight.Params.Count; i++)
        {
            Assert.That(resumed.Params.Leaves[i].equal(straight.Params.Leaves[i]).all().item<bool>(), Is.True, $"params[{straight.Params.Names[i]}]");
            Assert.That(resumed.Momenta.Leaves[i].equal(straight.Momenta.Leaves[i]).all().item<bool>(), Is.True, $"momenta[{straight.Params.Names[i]}]");
        }
        Assert.That(resumed.NoiseStream, Is.EqualTo(NoiseStream.PhiloxBoxMuller));
    }

    [Test]
    public void EveryPersistentKindOfTheRuntimeHasAUniqueNameAndARecipe()
    {
        var kinds = typeof(StateFile).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && t.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IPersistentState<>)))
            .Select(t => (Type: t, Kind: (string)t.GetProperty("Kind", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)!.GetValue(null)!))
            .ToList();
        Assert.That(kinds, Has.Count.GreaterThanOrEqualTo(14));
        var repeated = kinds.GroupBy(k => k.Kind).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(k => k.Type.Name))}");
        Assert.That(repeated, Is.Empty, "Kind names used by more than one state type");
        Assert.That(kinds.Select(k => k.Kind).Where(k => !Kinds.ContainsKey(k)), Is.Empty, "kinds without a fixture recipe");
    }

    [Test]
    public void EveryKindHasAFixture()
    {
        var present = Directory.GetFiles(Fixtures, "*.state").Select(f => Path.GetFileName(f)[..Path.GetFileName(f).IndexOf(".v", StringComparison.Ordinal)]).ToHashSet();
        Assert.That(Kinds.Keys.Where(k => !present.Contains(k)), Is.Empty, "kinds without a fixture file");
    }

    /// <summary>
    /// Writes every kind (into the folder named by POSTERIORS_WRITE_STATE_FIXTURES when set, by scripts/state-fixtures.sh;
    /// into a temporary folder otherwise) and checks that each file loads back with the recipe's values.
    /// </summary>
    [Test]
    public void WriteFixtures()
    {
        var target = Environment.GetEnvironmentVariable("POSTERIORS_WRITE_STATE_FIXTURES");
        var directory = string.IsNullOrEmpty(target) ? Directory.CreateTempSubdirectory("posteriors-fixtures-").FullName : target;
        try
        {
            StateFixtures.WriteAll(directory);
            foreach (var (kind, (load, expected)) in Kinds)
            {
                var files = Directory.GetFiles(directory, kind + ".v*.state");
                Assert.That(files, Is.Not.Empty, kind);
                var loaded = load(files.Max()!);
                AssertSameFields(loaded, expected(loaded));
            }
        }
        finally
        {
            if (string.IsNullOrEmpty(target)) Directory.Delete(directory, recursive: true);
        }
    }

    private static void AssertSameFields(StateRecord actual, StateRecord expected)
    {
        var names = expected.Fields.Select(f => f.Key).ToList();
        Assert.That(actual.Fields.Select(f => f.Key), Is.EquivalentTo(names), $"fields of {expected.Kind}");
        var values = actual.Fields.ToDictionary(f => f.Key, f => f.Value);
        foreach (var (name, value) in expected.Fields)
        {
            var what = $"{expected.Kind}.{name}";
            switch (value)
            {
                case ParameterTree tree:
                    var other = (ParameterTree)values[name];
                    Assert.That(other.Names, Is.EqualTo(tree.Names), what);
                    for (var i = 0; i < tree.Count; i++) AssertClose(other.Leaves[i], tree.Leaves[i], $"{what}['{tree.Names[i]}']");
                    break;
                case Tensor t: AssertClose((Tensor)values[name], t, what); break;
                default: Assert.That(values[name], Is.EqualTo(value), what); break;
            }
        }
    }

    /// <summary>Equal shape and dtype, values within 1e-6 (relative) — the functional optimizers match torch.optim to that.</summary>
    private static void AssertClose(Tensor actual, Tensor expected, string what)
    {
        Assert.That(actual.shape, Is.EqualTo(expected.shape), $"{what}: shape");
        Assert.That(actual.dtype, Is.EqualTo(expected.dtype), $"{what}: dtype");
        if (!expected.is_floating_point())
        {
            Assert.That(actual.equal(expected).all().item<bool>(), Is.True, $"{what}: values differ");
            return;
        }
        var difference = (actual - expected).abs().nan_to_num(0).max().item<double>();
        var scale = expected.abs().nan_to_num(0).max().item<double>();
        Assert.That(difference, Is.LessThanOrEqualTo(1e-6 * Math.Max(1, scale)), $"{what}: largest difference");
        Assert.That(actual.isnan().equal(expected.isnan()).all().item<bool>(), Is.True, $"{what}: NaN positions differ");
    }
}

/// <summary>Version-1 VI states kept a TorchSharp optimizer's bytes; SGD's momentum buffers become the state's moments too.</summary>
public class Version1ViOptimizerTests
{
    [Test]
    public void ASavedTorchSgdBecomesTheFunctionalSgdsMomentumBuffers()
    {
        var mean = ParameterTree.From(("w", tensor(new[] { 0.5, -1.0 })));
        var logSd = ParameterTree.From(("w", tensor(new[] { -1.0, -2.0 })));
        var parameters = mean.Leaves.Concat(logSd.Leaves).Select(t => new TorchSharp.Modules.Parameter(t.clone(), requires_grad: true)).ToList();
        var sgd = optim.SGD(parameters, 0.1, momentum: 0.9);
        for (var t = 0; t < 2; t++)
        {
            sgd.zero_grad();
            parameters.Select(p => (p * p * (t + 1)).sum()).Aggregate((a, b) => a + b).backward();
            sgd.step();
        }
        byte[] bytes;
        using (var stream = new MemoryStream())
        {
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) ((TorchSharp.Modules.OptimizerHelper)sgd).save_state_dict(writer);
            bytes = stream.ToArray();
        }
        var record = new StateRecord { Kind = DiagViState.Kind, KindVersion = 1 };
        record.Set("mean", mean);
        record.Set("step", 2L);
        record.Set("seed", 0L);
        record.Set("logPosterior", tensor(0.0));
        record.Set("nelbo", tensor(0.0));
        record.Set("optimizer", tensor(bytes, dtype: ScalarType.Byte));
        record.Set("logSd", logSd);

        var state = DiagViState.ReadFrom(record);
        var buffers = ((TorchSharp.Modules.OptimizerHelper)sgd).state_dict().State.Cast<TorchSharp.Modules.SGD.State>().Select(s => s.momentum_buffer).ToList();
        TensorAssert.Same(state.Fields.GetTree("params.momentum_buffer")["w"], buffers[0], "μ's buffer");
        TensorAssert.Same(state.Fields.GetTree("log_sd.momentum_buffer")["w"], buffers[1], "log σ's buffer");
        Assert.That(record.Has("optimizer"), Is.False, "the bytes are gone once converted");
    }
}
