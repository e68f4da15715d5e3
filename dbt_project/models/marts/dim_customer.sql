{#
    One row per customer in customer_features (customers in = customers out),
    with every feature plus the cluster assigned by the ML step.
#}

with

features as (

    select * from {{ ref('customer_features') }}

),

clusters as (

    select * from {{ ref('stg_ml__customer_clusters') }}

),

final as (

    select
        features.*,
        clusters.cluster_id,
        clusters.cluster_label,
        clusters.cluster_is_noise,
        clusters.segmentation_model_version

    from features
    left join clusters
        on features.customer_id = clusters.customer_id

)

select * from final
