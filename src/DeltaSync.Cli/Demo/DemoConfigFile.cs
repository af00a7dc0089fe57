namespace DeltaSync.Cli.Demo;

/// <summary>The configuration the demo writes beside its databases: a commented example a user can keep running.</summary>
internal static class DemoConfigFile
{
    public const string FileName = "deltasync.yaml";
    public const string SourceFile = "source.db";
    public const string DestinationFile = "warehouse.db";

    /// <summary>The default state store for <see cref="FileName"/>: <c>&lt;config name&gt;.state.db</c> beside it.</summary>
    public const string StateFile = "deltasync.state.db";

    /// <summary>Writes the file into <paramref name="folder"/> and returns its path.</summary>
    public static string Write(string folder)
    {
        var path = Path.Combine(folder, FileName);
        File.WriteAllText(path, Text);
        return path;
    }

    private const string Text = """
        # Written by `deltasync demo`: copies the demo shop (source.db) into a warehouse (warehouse.db), both beside
        # this file. Change source.db with any SQLite tool and sync again:
        #
        #   deltasync run --config deltasync.yaml
        #
        # The tables show two ways of finding changes (cdc_method):
        #   timestamp  reads rows whose updated_at moved past the last checkpoint. Needs nothing installed in the
        #              source, but cannot see rows that are DELETEd, so the shop soft-deletes customers (deleted_at).
        #              customers store 'YYYY-MM-DDTHH:MM:SS.fffZ', orders 'YYYY-MM-DD HH:MM:SS' (read in cdc.timestamp.timezone).
        #   trigger    installs triggers in source.db that log every insert, update and delete into _deltasync_changes:
        #              hard deletes are synced too, and products.updated_at (epoch milliseconds) is not needed.

        sync:
          name: shop                       # prefixes state streams (shop/customers, …)
          source:
            name: shop_db
            type: database
            connection: "sqlite:source.db" # relative paths resolve from this file's folder
            tables:
              - name: customers
                cdc_method: timestamp
                priority: critical         # gets a free slot before the other tables
              - name: orders
                cdc_method: timestamp
              - name: products
                cdc_method: trigger
                priority: high
          destination:
            name: warehouse
            type: database
            connection: "sqlite:warehouse.db"  # tables are created on the first run
          frequency: 10 minutes            # for `deltasync run --follow`
          batch_size: 500                  # rows per read and per destination transaction
          max_parallel_tables: 3

        cdc:
          timestamp:
            updated_at_field: updated_at
            timezone: UTC                  # zone of timestamps stored without an offset (orders)
            tolerance_window: 5 minutes    # every run re-reads this far behind its cursor to catch late commits
            safety_margin: 5 seconds       # the cursor never passes the clock minus this

        # No state block: checkpoints, run history and the dead-letter queue live in deltasync.state.db beside
        # this file, and each run's report in reports/.
        """;
}
